//! Source positions of YAML nodes, so diagnostics can say `file:line:col`.

use std::collections::BTreeMap;

use granit_parser::{Event, Parser};

/// Line and column (1-based) of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

/// Paths as diagnostics print them: `spec.resources[0].template`, `["a.b"]` for dotted keys.
pub fn child(path: &str, key: &str) -> String {
    if key.contains('.') {
        format!("{path}[\"{key}\"]")
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Positions of every node of every document of a YAML text, by path (mapping entries are
/// located at their key).
pub fn positions(text: &str) -> Vec<BTreeMap<String, Position>> {
    let mut documents = Vec::new();
    let mut current: BTreeMap<String, Position> = BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let position = Position {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        // The path of a node starting here, and whether it is a mapping key.
        let node_path = |stack: &mut Vec<Frame>,
                         current: &mut BTreeMap<String, Position>,
                         scalar: Option<&str>|
         -> Option<String> {
            match stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Seq { path, index }) => {
                    let p = format!("{path}[{index}]");
                    *index += 1;
                    current.entry(p.clone()).or_insert(position);
                    Some(p)
                }
                Some(Frame::Map { path, key }) => match key.take() {
                    Some(k) => Some(child(path, &k)),
                    None => {
                        let k = scalar.unwrap_or_default().to_string();
                        current.entry(child(path, &k)).or_insert(position);
                        *key = Some(k);
                        None
                    }
                },
            }
        };
        match event {
            Event::DocumentStart(..) => {
                current = BTreeMap::new();
                stack.clear();
            }
            Event::DocumentEnd => documents.push(std::mem::take(&mut current)),
            Event::Scalar(value, ..) => {
                let _ = node_path(&mut stack, &mut current, Some(&value));
            }
            Event::MappingStart(..) => {
                let path = node_path(&mut stack, &mut current, None).unwrap_or_default();
                current.entry(path.clone()).or_insert(position);
                stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = node_path(&mut stack, &mut current, None).unwrap_or_default();
                current.entry(path.clone()).or_insert(position);
                stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    documents
}

/// The position of `path`, or of its nearest located ancestor.
pub fn find(positions: &BTreeMap<String, Position>, path: &str) -> Position {
    let mut path = path.to_string();
    loop {
        if let Some(p) = positions.get(&path) {
            return *p;
        }
        let cut = path.rfind(['.', '[']);
        match cut {
            Some(i) => path.truncate(i),
            None => {
                return positions
                    .get("")
                    .copied()
                    .unwrap_or(Position { line: 1, col: 1 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_items() {
        let text = "a: 1\nspec:\n  resources:\n  - id: x\n    template: {k: v}\n---\nb: 2\n";
        let docs = positions(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0]["spec.resources[0].id"],
            Position { line: 4, col: 5 }
        );
        assert_eq!(
            docs[0]["spec.resources[0].template.k"],
            Position { line: 5, col: 16 }
        );
        assert_eq!(
            find(&docs[0], "spec.resources[0].template.missing"),
            Position { line: 5, col: 5 }
        );
        assert_eq!(docs[1]["b"], Position { line: 7, col: 1 });
    }
}
