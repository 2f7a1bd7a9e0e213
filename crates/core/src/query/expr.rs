//! The boolean `filter=` expression: comparisons joined with `&&`, `||`, `!` and
//! parentheses, e.g. `(status = "active" || price < 10) && title ~ "rust"`.
//!
//! ```text
//! expr       := and ("||" and)*
//! and        := unary ("&&" unary)*
//! unary      := "!" unary | "(" expr ")" | comparison
//! comparison := field ("=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~" | "?=") value
//! value      := "string" | 'string' | number | true | false | null
//! ```
//!
//! Every comparison resolves its field and checks its value as a `field[op]=value` filter
//! does ([`Column::parse_value`]), so a parsed tree holds only [`Filter`]s the store already
//! knows how to compile. A comparison is true or false, never unknown: a missing value
//! (NULL) satisfies no comparison but `!=` (it differs from every value) and `= null`, so
//! `!` simply negates. `a !~ b` is `!(a ~ b)`; `tags ?= "x"` is an array holding `"x"`.

mod lex;

use self::lex::{Tok, Token};
use super::{Column, Filter, Op, QueryLimits};
use crate::policy::FieldAccess;
use crate::record::{Record, Value};
use crate::schema::{ItemKind, ModelDef, ValueKind};
use std::fmt;

/// Deepest nesting of parentheses and `!`.
pub const MAX_DEPTH: usize = 16;

/// A parsed `filter=` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// One comparison (`Op::Eq`, `Ne`, `Lt`, `Lte`, `Gt`, `Gte`, `Contains` or `Has`, one
    /// value; `Value::Null` only with `Eq` and `Ne`).
    Cmp(Filter),
    /// `!e`
    Not(Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// How many comparisons the expression holds.
    pub fn comparisons(&self) -> usize {
        match self {
            Self::Cmp(_) => 1,
            Self::Not(e) => e.comparisons(),
            Self::And(a, b) | Self::Or(a, b) => a.comparisons() + b.comparisons(),
        }
    }

    /// Whether any comparison satisfies `f`.
    pub fn any(&self, f: &dyn Fn(&Filter) -> bool) -> bool {
        match self {
            Self::Cmp(c) => f(c),
            Self::Not(e) => e.any(f),
            Self::And(a, b) | Self::Or(a, b) => a.any(f) || b.any(f),
        }
    }

    /// Whether `record` satisfies the expression, as the store's SQL decides it.
    pub fn matches(&self, record: &Record) -> bool {
        match self {
            Self::Cmp(c) => c.matches(record),
            Self::Not(e) => !e.matches(record),
            Self::And(a, b) => a.matches(record) && b.matches(record),
            Self::Or(a, b) => a.matches(record) || b.matches(record),
        }
    }
}

/// Writes the expression back in the grammar it was parsed from (binary operands that are
/// themselves binary in parentheses), so that parsing the text gives the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = |f: &mut fmt::Formatter<'_>, e: &Expr| match e {
            Expr::And(..) | Expr::Or(..) => write!(f, "({e})"),
            _ => write!(f, "{e}"),
        };
        match self {
            Self::Cmp(c) => {
                let op = match c.op {
                    Op::Eq => "=",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Lte => "<=",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Has => "?=",
                    // `like`, `in` and `has_any` are `field[op]=` forms, never in an
                    // expression.
                    Op::Contains | Op::Like | Op::In | Op::HasAny => "~",
                };
                write!(f, "{} {op} ", c.column.name())?;
                match c.values.first().unwrap_or(&Value::Null) {
                    Value::Null => f.write_str("null"),
                    Value::Integer(i) => write!(f, "{i}"),
                    Value::Decimal(d) => write!(f, "{d}"),
                    Value::Date(d) => write!(f, "\"{d}\""),
                    Value::Float(x) => write!(f, "{x}"),
                    Value::Boolean(b) => write!(f, "{b}"),
                    Value::Text(s) => quoted(f, s),
                    Value::Datetime(t) => write!(f, "\"{t}\""),
                    Value::Reference(id) => write!(f, "\"{id}\""),
                    Value::Json(_) | Value::Array(_) => {
                        quoted(f, &c.values[0].to_json().to_string())
                    }
                }
            }
            Self::Not(e) => {
                f.write_str("!")?;
                operand(f, e)
            }
            Self::And(a, b) | Self::Or(a, b) => {
                operand(f, a)?;
                f.write_str(if matches!(self, Self::And(..)) {
                    " && "
                } else {
                    " || "
                })?;
                operand(f, b)
            }
        }
    }
}

fn quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Why an expression was refused, and where: the 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// 1-based character column of the offending input (one past the end for a premature end).
    pub column: usize,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

fn err<T>(column: usize, reason: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        column,
        reason: reason.into(),
    })
}

/// Parses `text` over `model`'s columns as `access` sees them (a field it may not see is
/// unknown). Reports the first error, with its column.
pub fn parse(
    model: &ModelDef,
    text: &str,
    access: FieldAccess,
    limits: &QueryLimits,
) -> Result<Expr, ExprError> {
    let max = limits.filter_max_chars;
    if text.chars().count() > max {
        return err(
            max + 1,
            format!("an expression is at most {max} characters"),
        );
    }
    let mut p = Parser {
        toks: lex::tokens(text),
        at: 0,
        model,
        access,
        limits,
        depth: 0,
        comparisons: 0,
    };
    let e = p.or()?;
    let t = p.next()?;
    match &t.tok {
        Tok::End => Ok(e),
        Tok::RParen => err(t.col, "`)` without a matching `(`"),
        other => err(
            t.col,
            format!("expected `&&`, `||` or the end, found {}", other.describe()),
        ),
    }
}

struct Parser<'a> {
    toks: Vec<Token>,
    at: usize,
    model: &'a ModelDef,
    access: FieldAccess,
    limits: &'a QueryLimits,
    depth: usize,
    comparisons: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.toks.get(self.at).map_or(&Tok::End, |t| &t.tok)
    }

    /// The next token; an error where the text stops making tokens.
    fn next(&mut self) -> Result<Token, ExprError> {
        let t = self.toks.get(self.at).cloned().unwrap_or(Token {
            tok: Tok::End,
            col: self.toks.last().map_or(1, |t| t.col),
        });
        self.at = (self.at + 1).min(self.toks.len());
        match t.tok {
            Tok::Bad(reason) => err(t.col, reason),
            _ => Ok(t),
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.and()?;
        while *self.peek() == Tok::Or {
            self.next()?;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        while *self.peek() == Tok::And {
            self.next()?;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let t = self.next()?;
        match t.tok {
            Tok::Not | Tok::LParen => {
                if self.depth == MAX_DEPTH {
                    return err(t.col, format!("nested more than {MAX_DEPTH} deep"));
                }
                self.depth += 1;
                let e = if t.tok == Tok::Not {
                    Expr::Not(Box::new(self.unary()?))
                } else {
                    let e = self.or()?;
                    let close = self.next()?;
                    match close.tok {
                        Tok::RParen => e,
                        Tok::End => return err(t.col, "`(` is never closed"),
                        other => {
                            return err(
                                close.col,
                                format!("expected `)`, found {}", other.describe()),
                            );
                        }
                    }
                };
                self.depth -= 1;
                Ok(e)
            }
            Tok::Word(name) => self.comparison(name, t.col),
            other => err(
                t.col,
                format!("expected a field name, found {}", other.describe()),
            ),
        }
    }

    fn comparison(&mut self, name: String, col: usize) -> Result<Expr, ExprError> {
        self.comparisons += 1;
        if self.comparisons > super::MAX_COMPARISONS {
            return err(
                col,
                format!("at most {} comparisons", super::MAX_COMPARISONS),
            );
        }
        let shown: String = name.chars().take(64).collect();
        let column = Column::resolve(self.model, &name, self.access).ok_or_else(|| ExprError {
            column: col,
            reason: format!("unknown field `{shown}`"),
        })?;
        let t = self.next()?;
        let Tok::Cmp(spelled) = t.tok else {
            return err(
                t.col,
                format!(
                    "expected a comparison (=, !=, <, <=, >, >=, ~, !~, ?=) after `{shown}`, found {}",
                    t.tok.describe()
                ),
            );
        };
        let (op, negated) = match spelled {
            "=" => (Op::Eq, false),
            "!=" => (Op::Ne, false),
            "<" => (Op::Lt, false),
            "<=" => (Op::Lte, false),
            ">" => (Op::Gt, false),
            ">=" => (Op::Gte, false),
            "~" => (Op::Contains, false),
            "?=" => (Op::Has, false),
            _ => (Op::Contains, true),
        };
        let v = self.next()?;
        let value = self.value(&column, op, spelled, &v)?;
        let cmp = Expr::Cmp(Filter {
            column,
            op,
            values: vec![value],
        });
        Ok(if negated {
            Expr::Not(Box::new(cmp))
        } else {
            cmp
        })
    }

    /// The value of a comparison, checked against its column and operator.
    fn value(&self, c: &Column, op: Op, spelled: &str, v: &Token) -> Result<Value, ExprError> {
        let name = c.name();
        let bad = |reason: String| err(v.col, reason);
        let (text, string) = match &v.tok {
            Tok::Str(s) => (s.as_str(), true),
            Tok::Num(s) => (s.as_str(), false),
            Tok::Word(w) if matches!(w.as_str(), "true" | "false" | "null") => (w.as_str(), false),
            other => {
                return bad(format!(
                    "expected a value after `{spelled}`, found {}",
                    other.describe()
                ));
            }
        };
        if c.kind() == ValueKind::Json {
            return bad(format!("`{name}` is json, which cannot be filtered"));
        }
        if text == "null" && !string {
            return match op {
                Op::Eq | Op::Ne => Ok(Value::Null),
                _ => bad("null compares only with = and !=".to_owned()),
            };
        }
        let array = matches!(c.kind(), ValueKind::Array(_));
        if array != (op == Op::Has) {
            return bad(if array {
                format!("`{name}` is an array: only ?= (has) and = null, != null apply to it")
            } else {
                "`?=` applies to array fields only".to_owned()
            });
        }
        if c.pii() && !matches!(op, Op::Eq | Op::Ne) {
            return bad(format!(
                "`{name}` is pii (stored encrypted): only = and != apply to it"
            ));
        }
        if op == Op::Contains {
            if c.kind() != ValueKind::Text {
                return bad(format!("`{spelled}` applies to text fields only"));
            }
            if !string {
                return bad(format!("`{spelled}` takes a string, in quotes"));
            }
            if text.contains('\0') {
                return bad(format!("the text of `{spelled}` must not contain NUL"));
            }
            let max = self.limits.pattern_max_chars;
            if text.chars().count() > max {
                return bad(format!(
                    "the text of `{spelled}` is at most {max} characters"
                ));
            }
            return Ok(Value::Text(text.to_owned()));
        }
        if matches!(op, Op::Lt | Op::Lte | Op::Gt | Op::Gte)
            && matches!(c.kind(), ValueKind::Boolean | ValueKind::Uuid)
        {
            return bad(format!("`{spelled}` does not apply to `{name}`"));
        }
        if !string
            && matches!(
                c.kind(),
                ValueKind::Text | ValueKind::Array(ItemKind::String)
            )
        {
            return bad(format!("`{name}` takes a string, in quotes"));
        }
        let max = self.limits.value_max_chars;
        if text.chars().count() > max {
            return bad(format!("a value is at most {max} characters"));
        }
        c.parse_value(text).map_err(|reason| ExprError {
            column: v.col,
            reason: format!("`{name}` {reason}"),
        })
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
