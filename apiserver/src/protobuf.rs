//! Decoding of the protobuf request bodies kubectl sends for `create namespace`, `create
//! configmap` and `create secret` (the `k8s\0` envelope around `runtime.Unknown`).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

const MAGIC: &[u8] = b"k8s\0";

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("unable to decode protobuf body: {what}"))
}

/// The fields of one protobuf message, in order: (field number, wire value).
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(data: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data
            .get(*pos)
            .ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint too long"))
}

fn fields(data: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let tag = varint(data, &mut pos)?;
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(data, &mut pos)?),
            2 => {
                let len =
                    usize::try_from(varint(data, &mut pos)?).map_err(|_| malformed("length"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= data.len())
                    .ok_or_else(|| malformed("truncated field"))?;
                let bytes = &data[pos..end];
                pos = end;
                Wire::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Wire::Varint(0)
            }
            5 => {
                pos += 4;
                Wire::Varint(0)
            }
            _ => return Err(malformed("unsupported wire type")),
        };
        out.push((tag >> 3, wire));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("invalid UTF-8"))
}

fn map_entry(bytes: &[u8], binary: bool) -> Result<(String, Value), ApiError> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (number, wire) in fields(bytes)? {
        if let Wire::Bytes(b) = wire {
            match number {
                1 => key = text(b)?,
                2 if binary => value = json!(base64::engine::general_purpose::STANDARD.encode(b)),
                2 => value = json!(text(b)?),
                _ => {}
            }
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for (number, wire) in fields(bytes)? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => {
                meta.insert("name".into(), json!(text(b)?));
            }
            (2, Wire::Bytes(b)) => {
                meta.insert("generateName".into(), json!(text(b)?));
            }
            (3, Wire::Bytes(b)) => {
                meta.insert("namespace".into(), json!(text(b)?));
            }
            (5, Wire::Bytes(b)) => {
                meta.insert("uid".into(), json!(text(b)?));
            }
            (6, Wire::Bytes(b)) => {
                meta.insert("resourceVersion".into(), json!(text(b)?));
            }
            (11, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                labels.insert(k, v);
            }
            (12, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                annotations.insert(k, v);
            }
            (13, Wire::Bytes(b)) => {
                let mut owner = Map::new();
                for (n, w) in fields(b)? {
                    match (n, w) {
                        (1, Wire::Bytes(x)) => {
                            owner.insert("kind".into(), json!(text(x)?));
                        }
                        (3, Wire::Bytes(x)) => {
                            owner.insert("name".into(), json!(text(x)?));
                        }
                        (4, Wire::Bytes(x)) => {
                            owner.insert("uid".into(), json!(text(x)?));
                        }
                        (5, Wire::Bytes(x)) => {
                            owner.insert("apiVersion".into(), json!(text(x)?));
                        }
                        (6, Wire::Varint(x)) => {
                            owner.insert("controller".into(), json!(x != 0));
                        }
                        (7, Wire::Varint(x)) => {
                            owner.insert("blockOwnerDeletion".into(), json!(x != 0));
                        }
                        _ => {}
                    }
                }
                owners.push(Value::Object(owner));
            }
            (14, Wire::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    if !owners.is_empty() {
        meta.insert("ownerReferences".into(), Value::Array(owners));
    }
    Ok(Value::Object(meta))
}

fn string_list(bytes: &[u8], field: u64) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for (number, wire) in fields(bytes)? {
        if let (n, Wire::Bytes(b)) = (number, wire)
            && n == field
        {
            out.push(json!(text(b)?));
        }
    }
    Ok(out)
}

/// Decodes a protobuf body for `kind` into its JSON object model.
pub fn decode(body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let unsupported =
        || ApiError::unsupported_media_type(&["application/json", "application/yaml"]);
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing k8s envelope"))?;
    let mut api_version = String::new();
    let mut wire_kind = String::new();
    let mut raw: &[u8] = &[];
    for (number, wire) in fields(envelope)? {
        match (number, wire) {
            (1, Wire::Bytes(type_meta)) => {
                for (n, w) in fields(type_meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => wire_kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if wire_kind != kind || !matches!(kind, "Namespace" | "ConfigMap" | "Secret") {
        return Err(unsupported());
    }
    let mut object = json!({"apiVersion": api_version, "kind": kind});
    let mut data = Map::new();
    let mut binary = Map::new();
    let mut string_data = Map::new();
    for (number, wire) in fields(raw)? {
        match (kind, number, wire) {
            (_, 1, Wire::Bytes(b)) => object["metadata"] = object_meta(b)?,
            ("Namespace", 2, Wire::Bytes(b)) => {
                object["spec"] = json!({"finalizers": string_list(b, 1)?})
            }
            ("ConfigMap", 2, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                data.insert(k, v);
            }
            ("ConfigMap", 3, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, true)?;
                binary.insert(k, v);
            }
            ("ConfigMap", 4, Wire::Varint(v)) | ("Secret", 5, Wire::Varint(v)) => {
                object["immutable"] = json!(v != 0)
            }
            ("Secret", 2, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, true)?;
                data.insert(k, v);
            }
            ("Secret", 3, Wire::Bytes(b)) => object["type"] = json!(text(b)?),
            ("Secret", 4, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, false)?;
                string_data.insert(k, v);
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        object["data"] = Value::Object(data);
    }
    if !binary.is_empty() {
        object["binaryData"] = Value::Object(binary);
    }
    if !string_data.is_empty() {
        object["stringData"] = Value::Object(string_data);
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from(number << 3 | 2).unwrap(),
            u8::try_from(bytes.len()).unwrap(),
        ];
        out.extend_from_slice(bytes);
        out
    }

    /// [API-11] a ConfigMap in the envelope kubectl sends decodes to its JSON model.
    #[test]
    fn decodes_a_configmap() {
        let meta = field(1, b"c1");
        let entry = [field(1, b"a"), field(2, b"b")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body, "ConfigMap").unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}})
        );
        assert_eq!(decode(&body, "Secret").unwrap_err().code, 415);
        assert_eq!(decode(b"nope", "ConfigMap").unwrap_err().code, 400);
    }
}
