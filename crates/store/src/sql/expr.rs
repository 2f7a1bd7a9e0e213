//! A `filter=` expression as SQL: `AND`, `OR`, `NOT` and parentheses around the same
//! comparisons a `field[op]=value` filter compiles to, every value a parameter.
//!
//! The expression's comparisons are two-valued (a missing value satisfies none but `!=`
//! and `= null`), SQL's are three-valued (`NULL < 5` is unknown, and so is its `NOT`). The
//! two agree wherever no `NOT` is above a comparison, since unknown and false both leave
//! the row out; below a `NOT`, each comparison that could be unknown is made false with
//! `COALESCE(…, FALSE)` first, so `!qty < 5` matches the records without a `qty`, as the
//! change feed's in-memory matcher decides.

use super::list::{blind_filter, filter};
use super::{Query, blind_column};
use crate::{Keys, StoreError};
use plinth_core::query::{Expr, Filter, Op};
use plinth_core::{ModelDef, Value};

/// Appends `e` as one SQL condition.
pub(super) fn expr<'a>(
    q: &mut Query<'a>,
    keys: &Keys,
    model: &ModelDef,
    e: &'a Expr,
) -> Result<(), StoreError> {
    node(q, keys, model, e, false)
}

fn node<'a>(
    q: &mut Query<'a>,
    keys: &Keys,
    model: &ModelDef,
    e: &'a Expr,
    under_not: bool,
) -> Result<(), StoreError> {
    match e {
        Expr::Cmp(f) => comparison(q, keys, model, f, under_not)?,
        Expr::Not(inner) => {
            q.push("NOT (");
            node(q, keys, model, inner, true)?;
            q.push(")");
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            q.push("(");
            node(q, keys, model, a, under_not)?;
            q.push(if matches!(e, Expr::And(..)) {
                " AND "
            } else {
                " OR "
            });
            node(q, keys, model, b, under_not)?;
            q.push(")");
        }
    }
    Ok(())
}

fn comparison<'a>(
    q: &mut Query<'a>,
    keys: &Keys,
    model: &ModelDef,
    f: &'a Filter,
    under_not: bool,
) -> Result<(), StoreError> {
    let name = f.column.name();
    if matches!(f.values.first(), Some(Value::Null)) {
        // A pii field's blind index is NULL exactly when the field is.
        let col = if f.column.pii() {
            blind_column(name)
        } else {
            name.to_owned()
        };
        q.ident(&col).push(if f.op == Op::Ne {
            " IS NOT NULL"
        } else {
            " IS NULL"
        });
        return Ok(());
    }
    // `IS DISTINCT FROM` (`ne`) is never unknown.
    let guard = under_not && f.op != Op::Ne;
    if guard {
        q.push("COALESCE(");
    }
    if f.column.pii() {
        blind_filter(q, keys, model, f)?;
    } else {
        filter(q, f);
    }
    if guard {
        q.push(", FALSE)");
    }
    Ok(())
}
