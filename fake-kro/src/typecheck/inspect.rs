//! kro's expression inspection (its AST inspector): which declared identifiers an expression
//! reads (in the order it reads them), which identifiers nobody declared, which functions it calls
//! and which of those kro's environment does not have. The dependency graph, the scope rules and
//! the `omit()` gate are built on it.

use std::collections::BTreeSet;

use kube_cel::cel::IdedExpr;
use kube_cel::cel::common::ast::{EntryExpr, Expr};

use super::functions::is_function;
use super::source;

/// What an expression references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Declared identifiers read, one entry per read, in kro's walk order.
    pub dependencies: Vec<String>,
    /// Identifiers neither declared nor bound by a comprehension, in walk order.
    pub unknown_identifiers: Vec<String>,
    /// Global functions kro's environment does not declare.
    pub unknown_functions: Vec<String>,
    /// Every function called (member calls as `receiver.name`).
    pub calls: Vec<String>,
}

impl Inspection {
    pub fn uses_omit(&self) -> bool {
        self.calls.iter().any(|c| c == "omit")
    }

    /// The declared identifiers read, each once, in first-read order.
    pub fn distinct_dependencies(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.dependencies {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// Inspects `expression` with `known` as the declared identifiers; `Err` is kro's
/// `parse error: …`.
pub fn inspect(expression: &str, known: &BTreeSet<String>) -> Result<Inspection, String> {
    let (parsed, _) = source::parse(expression)
        .map_err(|errors| format!("parse error: {}", source::display(expression, &errors)))?;
    let mut walker = Walker {
        known,
        bound: Vec::new(),
        out: Inspection::default(),
    };
    walker.walk(&parsed);
    Ok(walker.out)
}

struct Walker<'a> {
    known: &'a BTreeSet<String>,
    bound: Vec<String>,
    out: Inspection,
}

impl Walker<'_> {
    fn walk(&mut self, e: &IdedExpr) {
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => self.walk(&s.operand),
            Expr::Call(call) => {
                if let Some(target) = call.target.as_deref()
                    && self.macro_call(&call.func_name, target, &call.args)
                {
                    return;
                }
                call.args.iter().for_each(|a| self.walk(a));
                match call.target.as_deref() {
                    Some(target) => {
                        let full = format!("{}.{}", text(target), call.func_name);
                        if !is_function(&full) {
                            self.walk(target);
                        }
                        self.out.calls.push(full);
                    }
                    None => {
                        if !is_function(&call.func_name) {
                            self.out.unknown_functions.push(call.func_name.clone());
                        }
                        self.out.calls.push(call.func_name.clone());
                    }
                }
            }
            Expr::Comprehension(c) => {
                let depth = self.bound.len();
                self.bound.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.bound.push(v.clone());
                }
                self.bound.push(c.accu_var.clone());
                self.walk(&c.accu_init);
                self.walk(&c.iter_range);
                self.walk(&c.loop_cond);
                self.walk(&c.loop_step);
                self.walk(&c.result);
                self.bound.truncate(depth);
            }
            Expr::List(l) => l.elements.iter().for_each(|x| self.walk(x)),
            Expr::Map(m) => {
                for entry in &m.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(me) => {
                            self.walk(&me.key);
                            self.walk(&me.value);
                        }
                        EntryExpr::StructField(f) => self.walk(&f.value),
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value);
                    }
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn ident(&mut self, name: &str) {
        if self.bound.iter().any(|b| b == name) {
            return;
        }
        if self.known.contains(name) {
            self.out.dependencies.push(name.to_string());
        } else if !(name == "@result" || name.starts_with("$$") || name.starts_with("@__")) {
            self.out.unknown_identifiers.push(name.to_string());
        }
    }

    /// kro's macros the parser leaves as calls: their variables are bound in their bodies (kro
    /// sees them expanded into comprehensions). Whether the call was one.
    fn macro_call(&mut self, name: &str, target: &IdedExpr, args: &[IdedExpr]) -> bool {
        let names = |from: usize, to: usize| -> Option<Vec<String>> {
            args.get(from..to)?
                .iter()
                .map(|a| match &a.expr {
                    Expr::Ident(n) => Some(n.clone()),
                    _ => None,
                })
                .collect()
        };
        let (variables, body_from) = match (name, args.len()) {
            ("bind", 3) if matches!(&target.expr, Expr::Ident(n) if n == "cel") => {
                let Some(v) = names(0, 1) else { return false };
                // The initial value is outside the binding.
                self.walk(&args[1]);
                let depth = self.bound.len();
                self.bound.extend(v);
                self.walk(&args[2]);
                self.bound.truncate(depth);
                return true;
            }
            ("newCondition", 1) if matches!(&target.expr, Expr::Ident(n) if n == "runtime") => {
                if let Expr::Map(m) = &args[0].expr {
                    for entry in &m.entries {
                        if let EntryExpr::MapEntry(me) = &entry.expr {
                            self.walk(&me.value);
                        }
                    }
                }
                self.walk(target);
                self.out.calls.push("runtime.newCondition".into());
                return true;
            }
            ("all" | "exists" | "existsOne" | "exists_one", 3)
            | ("transformList" | "transformMap" | "transformMapEntry", 3 | 4) => {
                let Some(v) = names(0, 2) else { return false };
                (v, 2)
            }
            ("sortBy" | "optMap" | "optFlatMap", 2) => {
                let Some(v) = names(0, 1) else { return false };
                (v, 1)
            }
            _ => return false,
        };
        // As the expanded comprehension: the variables are bound, then the range (the target),
        // then the body.
        let depth = self.bound.len();
        self.bound.extend(variables);
        self.walk(target);
        args[body_from..].iter().for_each(|a| self.walk(a));
        self.bound.truncate(depth);
        true
    }
}

/// kro's printing of a call's receiver (`base64`, `schema.spec.name`), to look up namespaced
/// functions such as `base64.encode`.
fn text(e: &IdedExpr) -> String {
    match &e.expr {
        Expr::Ident(name) => name.clone(),
        Expr::Select(s) => format!("{}.{}", text(&s.operand), s.field),
        _ => "<expr>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn references_and_functions() {
        let k = known(&["schema", "vpc", "runtime"]);
        let i = inspect("vpc.status.id + schema.spec.name + other.x", &k).unwrap();
        assert_eq!(i.dependencies, ["vpc", "schema"]);
        assert_eq!(i.unknown_identifiers, ["other"]);
        let i = inspect("missingFn(vpc) && base64.encode(b'x') != ''", &k).unwrap();
        assert_eq!(i.unknown_functions, ["missingFn"]);
        assert!(i.unknown_identifiers.is_empty());
        let i = inspect("cel.bind(x, vpc.a, x + 1)", &k).unwrap();
        assert_eq!(i.dependencies, ["vpc"]);
        assert!(i.unknown_identifiers.is_empty());
        let i = inspect("{'a': 1}.transformMap(k, v, v + k.size())", &k).unwrap();
        assert!(i.unknown_identifiers.is_empty());
        let i = inspect("runtime.newCondition({type: 'X', status: vpc.s})", &k).unwrap();
        assert_eq!(i.dependencies, ["vpc", "runtime"]);
        assert!(
            inspect("x ? ", &k)
                .unwrap_err()
                .starts_with("parse error: ERROR: <input>:1:")
        );
        assert!(
            inspect("x == '' ? omit() : x", &known(&["x"]))
                .unwrap()
                .uses_omit()
        );
    }
}
