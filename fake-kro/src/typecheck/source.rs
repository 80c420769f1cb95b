//! Parsing with source positions, and cel-go's error display (`ERROR: <input>:1:11: …` with the
//! source line and a caret), so fake-kro's CEL errors read as kro's.

use std::collections::BTreeMap;

use kube_cel::cel::IdedExpr;
use kube_cel::cel::parser::Parser;

/// Character offsets of each expression id in its source.
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    starts: BTreeMap<u64, u32>,
}

impl Offsets {
    pub fn start(&self, id: u64) -> Option<u32> {
        self.starts.get(&id).copied()
    }
}

/// One CEL error at a source offset (or none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CelError {
    pub offset: Option<u32>,
    pub message: String,
}

fn parser() -> Parser {
    Parser::new().enable_optional_syntax(true)
}

/// Parses an expression, keeping each node's source offset. The parser keeps offsets only on the
/// error path, so they are taken from a second parse of the same text with a character no CEL
/// token starts with appended: the lexer drops it (an error after the whole expression), the
/// tokens and so the node ids are unchanged, and the error carries the offsets.
pub fn parse(source: &str) -> Result<(IdedExpr, Offsets), Vec<CelError>> {
    let parsed = parser().parse(source).map_err(|errors| {
        errors
            .errors
            .iter()
            .map(|e| CelError {
                offset: offset_of_position(source, e.pos),
                message: e.msg.clone(),
            })
            .collect::<Vec<_>>()
    })?;
    let mut offsets = Offsets::default();
    if let Err(errors) = parser().parse(&format!("{source}#"))
        && let Some(info) = errors.errors.iter().find_map(|e| e.source_info.clone())
    {
        for id in 1..=max_id(&parsed) {
            if let Some((start, _)) = info.offset_for(id) {
                offsets.starts.insert(id, start);
            }
        }
    }
    Ok((parsed, offsets))
}

fn max_id(expr: &IdedExpr) -> u64 {
    use kube_cel::cel::common::ast::{EntryExpr, Expr};
    let children: Vec<&IdedExpr> = match &expr.expr {
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(c.args.iter()).collect(),
        Expr::Select(s) => vec![&s.operand],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|e| match &e.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .filter_map(|e| match &e.expr {
                EntryExpr::StructField(f) => Some(&f.value),
                EntryExpr::MapEntry(_) => None,
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        _ => Vec::new(),
    };
    // Entry ids of maps are assigned after their keys and values, so scan generously.
    children
        .into_iter()
        .map(max_id)
        .max()
        .unwrap_or(0)
        .max(expr.id)
        + 8
}

/// The offset of a parser's (line, column) position, both 1-based.
fn offset_of_position(source: &str, (line, column): (isize, isize)) -> Option<u32> {
    let line = usize::try_from(line).ok()?.checked_sub(1)?;
    let column = usize::try_from(column).ok()?.checked_sub(1)?;
    let before: usize = source
        .split_inclusive('\n')
        .take(line)
        .map(|l| l.chars().count())
        .sum();
    u32::try_from(before + column).ok()
}

/// cel-go's display of an expression's parse errors; `None` when it parses.
pub fn parse_errors(source: &str) -> Option<String> {
    parse(source).err().map(|errors| display(source, &errors))
}

/// cel-go's display of errors: sorted by position, each `ERROR: <input>:L:C: message` with the
/// source line and a caret under the column, joined by newlines.
pub fn display(source: &str, errors: &[CelError]) -> String {
    let mut sorted: Vec<&CelError> = errors.iter().collect();
    sorted.sort_by_key(|e| e.offset.unwrap_or(0));
    sorted
        .iter()
        .map(|e| display_one(source, e))
        .collect::<Vec<_>>()
        .join("\n")
}

fn display_one(source: &str, error: &CelError) -> String {
    let Some(offset) = error.offset else {
        return format!("ERROR: <input>:-1:0: {}", error.message);
    };
    let mut line_number = 1;
    let mut column = 0usize;
    let mut line_text = "";
    let mut consumed = 0usize;
    for line in source.split('\n') {
        let length = line.chars().count();
        if (offset as usize) <= consumed + length {
            column = offset as usize - consumed;
            line_text = line;
            break;
        }
        consumed += length + 1;
        line_number += 1;
    }
    let snippet = line_text.replace('\t', " ");
    let indent: String = snippet
        .chars()
        .take(column)
        .map(|c| if c.is_ascii() { '.' } else { '\u{ff0e}' })
        .collect();
    format!(
        "ERROR: <input>:{line_number}:{}: {}\n | {snippet}\n | {indent}^",
        column + 1,
        error.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_the_second_parse() {
        let source = r#""prefix-" + (res.spec.replicas)"#;
        let (parsed, offsets) = parse(source).unwrap();
        // The `+` call sits at the operator.
        assert_eq!(offsets.start(parsed.id), Some(10));
        let shown = display(
            source,
            &[CelError {
                offset: offsets.start(parsed.id),
                message: "found no matching overload for '_+_' applied to '(string, int)'".into(),
            }],
        );
        assert_eq!(
            shown,
            "ERROR: <input>:1:11: found no matching overload for '_+_' applied to '(string, int)'\n | \"prefix-\" + (res.spec.replicas)\n | ..........^"
        );
    }
}
