//! `${…}` scanning exactly as kro does it (kro.md §6.1): standalone expressions, string
//! templates, and the pitfalls of single quotes and nesting.

/// A part of a scanned string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Expression(String),
}

/// What a string field holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// No `${…}` at all.
    Literal,
    /// Exactly one expression and nothing else: its value replaces the field.
    Standalone(String),
    /// Literal text and/or several expressions, concatenated as a string.
    Template(Vec<Part>),
}

/// The error for `${` inside an expression outside a string literal.
pub const NESTED: &str = "nested expressions are not allowed unless inside string literals";

/// Scans one string field.
pub fn scan(text: &str) -> Result<Scanned, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            match expression_end(&chars, i + 2)? {
                Some(end) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Expression(chars[i + 2..end].iter().collect()));
                    i = end + 1;
                    continue;
                }
                None => {
                    // Unterminated: literal text; scanning resumes one character later.
                    literal.push(chars[i]);
                    i += 1;
                    continue;
                }
            }
        }
        literal.push(chars[i]);
        i += 1;
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(match parts.as_slice() {
        [] => Scanned::Literal,
        [Part::Literal(_)] => Scanned::Literal,
        [Part::Expression(e)] => Scanned::Standalone(e.clone()),
        _ => Scanned::Template(parts),
    })
}

/// The index of the `}` closing an expression that starts at `start`, if any.
fn expression_end(chars: &[char], start: usize) -> Result<Option<usize>, String> {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '$' && chars.get(i + 1) == Some(&'{') {
            return Err(NESTED.into());
        } else if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth -= 1;
            if depth == 0 {
                return Ok(Some(i));
            }
        }
        i += 1;
    }
    Ok(None)
}

/// Go's `%q` of a literal, as kro quotes template literals.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The CEL expression a template compiles to (v0.9.0+): `"lit" + (e1) + "lit"`.
pub fn template_expression(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Literal(l) => go_quote(l),
            Part::Expression(e) => format!("({e})"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [KRO-CEL-01] the scanning rules of kro.md §6.1.
    #[test]
    fn scanning_rules() {
        assert_eq!(scan("plain").unwrap(), Scanned::Literal);
        assert_eq!(scan("${a.b}").unwrap(), Scanned::Standalone("a.b".into()));
        assert_eq!(
            scan("${{'a': 1}}").unwrap(),
            Scanned::Standalone("{'a': 1}".into())
        );
        assert_eq!(
            scan(r#"${"}"}"#).unwrap(),
            Scanned::Standalone(r#""}""#.into())
        );
        assert_eq!(
            scan(r#"${"${VAR}"}"#).unwrap(),
            Scanned::Standalone(r#""${VAR}""#.into())
        );
        assert_eq!(
            scan("${a.b} ").unwrap(),
            Scanned::Template(vec![
                Part::Expression("a.b".into()),
                Part::Literal(" ".into())
            ])
        );
        assert_eq!(
            scan("x-${a}").unwrap(),
            Scanned::Template(vec![
                Part::Literal("x-".into()),
                Part::Expression("a".into())
            ])
        );
        assert_eq!(scan("${a ${b}}").unwrap_err(), NESTED);
        // A single-quoted brace ends the expression early (the documented pitfall).
        assert_eq!(
            scan("${'}'}").unwrap(),
            Scanned::Template(vec![
                Part::Expression("'".into()),
                Part::Literal("'}".into())
            ])
        );
        assert_eq!(scan("${unterminated").unwrap(), Scanned::Literal);
        assert_eq!(
            template_expression(&[Part::Literal("a\"".into()), Part::Expression("x".into())]),
            r#""a\"" + (x)"#
        );
    }
}
