//! Small pieces both engines share: the `like` pattern syntax and idempotency-key scopes.

use crate::WriteCtx;

/// Translates a `like` filter (`*` is the wildcard) into an SQL `LIKE` pattern with `\` as
/// the escape character: SQL's own `%`, `_` and `\` match literally.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// Idempotency keys are scoped to the principal that sent them.
pub(crate) fn idempotency_scope(ctx: &WriteCtx) -> String {
    match ctx.actor.user_id() {
        Some(u) => u.to_string(),
        None => format!("{:?}", ctx.actor.role()).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_sql_wildcards() {
        assert_eq!(like_pattern("*foo*"), "%foo%");
        assert_eq!(like_pattern("50%_off\\"), "50\\%\\_off\\\\");
    }
}
