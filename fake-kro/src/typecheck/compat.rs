//! Whether an expression's type may fill a template field (kro's `validateExpressionType`): CEL's
//! assignability first, then kro's structural ("duck typing") compatibility, with kro's reasons.

use super::types::{Kind, Type};

/// kro's check of a template expression's output type against the field's expected type.
pub fn expression_type(
    output: &Type,
    expected: &Type,
    expression: &str,
    resource: &str,
    path: &str,
) -> Result<(), String> {
    if expected.accepts(output) {
        return Ok(());
    }
    match structurally_compatible(output, expected) {
        Ok(()) => Ok(()),
        Err(reason) => Err(format!(
            "type mismatch in resource \"{resource}\" at path \"{path}\": expression \"{expression}\" returns type \"{}\" but expected \"{}\": {reason}",
            output.display(),
            expected.display()
        )),
    }
}

/// kro's `AreTypesStructurallyCompatible`: `Err` with the reason when `output` cannot fill
/// `expected`. An object type is compared field by field only against another object type or a
/// map; anything else kro lets through, as it does.
pub fn structurally_compatible(output: &Type, expected: &Type) -> Result<(), String> {
    if matches!(expected, Type::Dyn) || matches!(output, Type::Dyn) {
        return Ok(());
    }
    if let Type::Optional(inner) = output {
        return structurally_compatible(inner, expected);
    }
    match (expected, output) {
        (Type::Object(e), Type::Map(key, value)) => {
            if key.kind() != Kind::String {
                return Err("map keys must be strings to assign to struct".into());
            }
            for (name, field) in &e.fields {
                structurally_compatible(value, field).map_err(|err| {
                    format!("map value incompatible with struct field \"{name}\": {err}")
                })?;
            }
            Ok(())
        }
        (Type::Map(key, value), Type::Object(o)) => {
            if key.kind() != Kind::String {
                return Err("map key type must be string when assigning struct → map".into());
            }
            for (name, field) in &o.fields {
                structurally_compatible(field, value).map_err(|err| {
                    format!("struct field \"{name}\" incompatible with map value type: {err}")
                })?;
            }
            Ok(())
        }
        (Type::List(e), _) => match output {
            Type::List(o) => structurally_compatible(o, e)
                .map_err(|err| format!("list element type incompatible: {err}")),
            other => Err(format!(
                "list parameter count mismatch: got {}, expected 1",
                other.parameters().len()
            )),
        },
        (Type::Map(ek, ev), _) => match output {
            Type::Map(ok, ov) => {
                structurally_compatible(ok, ek)
                    .map_err(|err| format!("map key type incompatible: {err}"))?;
                structurally_compatible(ov, ev)
                    .map_err(|err| format!("map value type incompatible: {err}"))
            }
            other => Err(format!(
                "map parameter count mismatch: got {}, expected 2",
                other.parameters().len()
            )),
        },
        (Type::Object(e), Type::Object(o)) => {
            if e.preserve_unknown {
                return Ok(());
            }
            for (name, field) in &o.fields {
                let Some(expected_field) = e.fields.get(name) else {
                    return Err(format!(
                        "field \"{name}\" exists in output but not in expected type"
                    ));
                };
                structurally_compatible(field, expected_field)
                    .map_err(|err| format!("field \"{name}\" has incompatible type: {err}"))?;
            }
            Ok(())
        }
        // kro resolves the output type by name; a scalar or unnamed type has no fields to
        // compare, so it passes.
        (Type::Object(_), _) => Ok(()),
        _ if output.kind() != expected.kind() => Err(format!(
            "type kind mismatch: got \"{}\", expected \"{}\"",
            output.display(),
            expected.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typecheck::decl;
    use serde_json::json;

    #[test]
    fn kros_reasons() {
        let expected = decl::declare(
            &json!({"type": "object", "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}),
            "__type_pod.spec.containers.@idx",
        )
        .unwrap();
        let extra = decl::declare(
            &json!({"type": "object", "properties": {"name": {"type": "string"}, "extraField": {"type": "string"}}}),
            "__type_schema.spec.containers.@idx",
        )
        .unwrap();
        let err =
            structurally_compatible(&Type::list(extra), &Type::list(expected.clone())).unwrap_err();
        assert_eq!(
            err,
            "list element type incompatible: field \"extraField\" exists in output but not in expected type"
        );
        assert_eq!(
            structurally_compatible(&Type::list(Type::String), &Type::String).unwrap_err(),
            "type kind mismatch: got \"list(string)\", expected \"string\""
        );
        assert!(structurally_compatible(&Type::String, &expected).is_ok());
        assert!(
            expression_type(&Type::Int, &Type::String, "1", "res", "spec.name",)
                .unwrap_err()
                .contains("returns type \"int\" but expected \"string\"")
        );
    }
}
