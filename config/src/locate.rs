//! Maps a line:column back to a path like `switches[0].ports[2].vlan`.
//!
//! serde-saphyr's syntax and type errors carry a position but not the path of
//! the node. We walk the YAML event stream once (a cheap, iterative pass over
//! the same text, with no alias expansion) and record where each node starts.

use granit_parser::{Event, Parser};
use serde_saphyr::granit_parser;

/// A node start: 1-based line and column, its path, and its text if scalar.
#[derive(Debug, Clone)]
struct Node {
    line: u64,
    column: u64,
    path: String,
    scalar: Option<String>,
}

/// Where each node of a YAML text starts.
#[derive(Debug, Default)]
pub(crate) struct PathMap {
    nodes: Vec<Node>,
    /// Whether the text holds at least one YAML node (not only comments).
    pub has_content: bool,
}

enum Frame {
    Seq { path: String, next: usize },
    Map { path: String, key: Option<String> },
}

fn child_path(stack: &[Frame]) -> (String, bool) {
    match stack.last() {
        None => (String::new(), false),
        Some(Frame::Seq { path, next }) => (format!("{path}[{next}]"), false),
        Some(Frame::Map { path, key: None }) => (path.clone(), true),
        Some(Frame::Map { path, key: Some(k) }) => (join(path, k), false),
    }
}

/// `a.b`, or `b` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// After a complete node in the current container, advance it.
fn finish_node(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Seq { next, .. }) => *next += 1,
        Some(Frame::Map { key, .. }) => *key = None,
        None => {}
    }
}

/// Records `name` as the key of the mapping being read, if one is.
fn set_key(stack: &mut [Frame], name: String) {
    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
        *key = Some(name);
    }
}

impl PathMap {
    /// Records a node starting at `line:column`.
    fn push(&mut self, line: u64, column: u64, path: String, scalar: Option<String>) {
        self.nodes.push(Node {
            line,
            column,
            path,
            scalar,
        });
    }

    /// Walks `text` until its end or its first syntax error.
    pub(crate) fn new(text: &str) -> PathMap {
        let mut map = PathMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let line = span.start.line() as u64;
            let column = span.start.col() as u64 + 1;
            match event {
                Event::Scalar(value, ..) => {
                    map.has_content = true;
                    let (path, is_key) = child_path(&stack);
                    let scalar = Some(value.to_string());
                    if is_key {
                        map.push(line, column, join(&path, &value), scalar);
                        set_key(&mut stack, value.to_string());
                    } else {
                        map.push(line, column, path, scalar);
                        finish_node(&mut stack);
                    }
                }
                Event::Alias(_) => {
                    map.has_content = true;
                    let (path, is_key) = child_path(&stack);
                    if is_key {
                        set_key(&mut stack, "<alias>".to_string());
                    } else {
                        map.push(line, column, path, None);
                        finish_node(&mut stack);
                    }
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    map.has_content = true;
                    let (mut path, is_key) = child_path(&stack);
                    if is_key {
                        // A complex key: give it a placeholder name.
                        path = join(&path, "<key>");
                        set_key(&mut stack, "<key>".to_string());
                    }
                    map.push(line, column, path.clone(), None);
                    if matches!(event, Event::SequenceStart(..)) {
                        stack.push(Frame::Seq { path, next: 0 });
                    } else {
                        stack.push(Frame::Map { path, key: None });
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    finish_node(&mut stack);
                }
                _ => {}
            }
        }
        map
    }

    /// The path of the node at `line:column`: the outermost node starting
    /// exactly there, or else the innermost node starting before it.
    /// `innermost` picks the last node starting there (a key rather than the
    /// mapping it opens).
    pub(crate) fn path_at(&self, line: u64, column: u64, innermost: bool) -> String {
        let before = |n: &&Node| (n.line, n.column) <= (line, column);
        let exact = |n: &&Node| (n.line, n.column) == (line, column);
        let found = if innermost {
            self.nodes.iter().rfind(exact)
        } else {
            self.nodes.iter().find(exact)
        };
        found
            .or_else(|| self.nodes.iter().rfind(before))
            .map(|n| n.path.clone())
            .unwrap_or_default()
    }

    /// The text of the scalar starting at `line:column`, if any.
    pub(crate) fn scalar_at(&self, line: u64, column: u64) -> Option<&str> {
        self.nodes
            .iter()
            .rfind(|n| (n.line, n.column) == (line, column))
            .and_then(|n| n.scalar.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let text = "switches:\n  - name: sw0\n    ports:\n      - name: vm0\n        vlan: { trunk: [1, 2] }\n";
        let m = PathMap::new(text);
        assert!(m.has_content);
        assert_eq!(m.path_at(1, 1, true), "switches");
        assert_eq!(m.path_at(2, 5, false), "switches[0]");
        assert_eq!(m.path_at(2, 5, true), "switches[0].name");
        assert_eq!(m.path_at(2, 11, false), "switches[0].name");
        assert_eq!(m.path_at(4, 9, false), "switches[0].ports[0]");
        assert_eq!(
            m.path_at(5, 28, false),
            "switches[0].ports[0].vlan.trunk[1]"
        );
        assert_eq!(m.scalar_at(5, 28), Some("2"));
    }

    #[test]
    fn empty() {
        assert!(!PathMap::new("").has_content);
        assert!(!PathMap::new("# nothing\n\n").has_content);
        assert!(PathMap::new("~").has_content);
    }
}
