//! The tokens of a `filter=` expression, each with its 1-based character column.

use super::{ExprError, err};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A name: a field, or `true`, `false`, `null` where a value is expected.
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    /// A number as written.
    Num(String),
    /// A comparison operator as written.
    Cmp(&'static str),
    /// Text that is no token, and why: the last token, reported when the parser reaches it,
    /// so that an error earlier in the text is reported first.
    Bad(String),
    And,
    Or,
    Not,
    LParen,
    RParen,
    End,
}

impl Tok {
    /// How an error message names the token.
    pub(super) fn describe(&self) -> String {
        let short = |s: &str| s.chars().take(32).collect::<String>();
        match self {
            Self::Word(w) => format!("`{}`", short(w)),
            Self::Str(_) => "a string".to_owned(),
            Self::Num(n) => format!("`{}`", short(n)),
            Self::Cmp(op) => format!("`{op}`"),
            Self::And => "`&&`".to_owned(),
            Self::Or => "`||`".to_owned(),
            Self::Not => "`!`".to_owned(),
            Self::LParen => "`(`".to_owned(),
            Self::RParen => "`)`".to_owned(),
            Self::End | Self::Bad(_) => "the end".to_owned(),
        }
    }
}

/// A token and its column.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) col: usize,
}

/// Splits `text` into tokens, ending with [`Tok::End`] one column past the last character,
/// or with [`Tok::Bad`] where the text stops making tokens.
pub(super) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    if let Err(e) = read(text, &mut out) {
        out.push(Token {
            tok: Tok::Bad(e.reason),
            col: e.column,
        });
    }
    out
}

fn read(text: &str, out: &mut Vec<Token>) -> Result<(), ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let col = i + 1;
        let two = |next: char| at(i + 1) == Some(next);
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '&' if two('&') => (Tok::And, 2),
            '|' if two('|') => (Tok::Or, 2),
            '&' | '|' => return err(col, format!("expected `{c}{c}`")),
            '!' if two('=') => (Tok::Cmp("!="), 2),
            '!' if two('~') => (Tok::Cmp("!~"), 2),
            '!' => (Tok::Not, 1),
            '=' => (Tok::Cmp("="), 1),
            '~' => (Tok::Cmp("~"), 1),
            '?' if two('=') => (Tok::Cmp("?="), 2),
            '<' if two('=') => (Tok::Cmp("<="), 2),
            '<' => (Tok::Cmp("<"), 1),
            '>' if two('=') => (Tok::Cmp(">="), 2),
            '>' => (Tok::Cmp(">"), 1),
            '"' | '\'' => {
                let (s, len) = string(&chars[i..], col)?;
                (Tok::Str(s), len)
            }
            c if c.is_ascii_digit()
                || (c == '-' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut j = i + 1;
                while let Some(d) = at(j) {
                    let exponent_sign =
                        matches!(d, '+' | '-') && matches!(at(j - 1), Some('e' | 'E'));
                    if !(d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E') || exponent_sign) {
                        break;
                    }
                    j += 1;
                }
                (Tok::Num(chars[i..j].iter().collect()), j - i)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while at(j).is_some_and(|d| d.is_ascii_alphanumeric() || d == '_') {
                    j += 1;
                }
                (Tok::Word(chars[i..j].iter().collect()), j - i)
            }
            c => return err(col, format!("unexpected character {c:?}")),
        };
        out.push(Token { tok, col });
        i += len;
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
    });
    Ok(())
}

/// The string opening `chars` (its first character is the quote), unescaped, and how many
/// characters it spans. `\` escapes the quote and itself, nothing else.
fn string(chars: &[char], col: usize) -> Result<(String, usize), ExprError> {
    let quote = chars.first().copied().unwrap_or('"');
    let mut s = String::new();
    let mut j = 1;
    loop {
        match chars.get(j) {
            None => return err(col, "the string is never closed"),
            Some('\\') => match chars.get(j + 1) {
                Some(&c) if c == '\\' || c == '"' || c == '\'' => {
                    s.push(c);
                    j += 2;
                }
                _ => {
                    return err(col + j, "only \\\", \\' and \\\\ are escapes in a string");
                }
            },
            Some(&c) if c == quote => return Ok((s, j + 1)),
            Some(&c) => {
                s.push(c);
                j += 1;
            }
        }
    }
}
