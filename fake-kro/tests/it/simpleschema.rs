//! SimpleSchema goldens (kro.md §2.7): GS-01..GS-14 conversions and SE-01..SE-19 errors
//! ([KRO-SS-*]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fake_kro::simpleschema::{KroVersion, parse_markers, spec_schema};
use rstest::rstest;
use serde_json::{Map, Value, json};

fn map(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[rstest]
#[case::gs01(json!({"name":"string | required=true","replicas":"integer | default=1 minimum=1 maximum=10","enabled":"boolean","ratio":"float"}), json!({}),
    json!({"type":"object","required":["name"],"properties":{"enabled":{"type":"boolean"},"name":{"type":"string"},"ratio":{"type":"number"},"replicas":{"type":"integer","default":1,"maximum":10,"minimum":1}}}))]
#[case::gs02(json!({"image":"string | default=nginx","resources":{"cpu":"string | default=\"100m\"","memory":"string"}}), json!({}),
    json!({"type":"object","default":{},"properties":{"image":{"type":"string","default":"nginx"},"resources":{"type":"object","default":{},"properties":{"cpu":{"type":"string","default":"100m"},"memory":{"type":"string"}}}}}))]
#[case::gs03(json!({"tags":"[]string","limits":"map[string]integer","matrix":"[][]float","extra":"[]map[string]object","blob":"object"}), json!({}),
    json!({"type":"object","properties":{"blob":{"type":"object","x-kubernetes-preserve-unknown-fields":true},"extra":{"type":"array","items":{"type":"object","additionalProperties":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}},"limits":{"type":"object","additionalProperties":{"type":"integer"}},"matrix":{"type":"array","items":{"type":"array","items":{"type":"number"}}},"tags":{"type":"array","items":{"type":"string"}}}}))]
#[case::gs04(json!({"level":"string | enum=\"debug,info, warn\" default=info","code":"integer | enum=\"400,404,500\" default=500"}), json!({}),
    json!({"type":"object","default":{},"properties":{"code":{"type":"integer","default":500,"enum":[400,404,500]},"level":{"type":"string","default":"info","enum":["debug","info","warn"]}}}))]
#[case::gs05(json!({"zones":"[]string | uniqueItems=true minItems=1 maxItems=3","ports":"[]Port | listType=map listMapKey=name"}), json!({"Port":{"name":"string | required=true","port":"integer"}}),
    json!({"type":"object","properties":{"ports":{"type":"array","items":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"port":{"type":"integer"}}},"x-kubernetes-list-map-keys":["name"],"x-kubernetes-list-type":"map"},"zones":{"type":"array","maxItems":3,"minItems":1,"items":{"type":"string"},"x-kubernetes-list-type":"set"}}}))]
#[case::gs06(json!({"id":"string | immutable=true validation=\"self.startsWith('v')\" pattern=\"^v[0-9]+\\.[0-9]+$\" minLength=2 maxLength=16"}), json!({}),
    json!({"type":"object","properties":{"id":{"type":"string","maxLength":16,"minLength":2,"pattern":"^v[0-9]+\\.[0-9]+$","x-kubernetes-validations":[{"rule":"self == oldSelf","message":"field is immutable"},{"rule":"self.startsWith('v')","message":"validation failed"}]}}}))]
#[case::gs07(json!({"myValue":"MyType","net":"Network"}), json!({"MyType":"string | required=true description=\"my description\"","Network":{"cidr":"string | default=\"10.0.0.0/16\"","subnets":"[]Subnet"},"Subnet":{"zone":"string"}}),
    json!({"type":"object","required":["myValue"],"properties":{"myValue":{"description":"my description","type":"string"},"net":{"type":"object","default":{},"properties":{"cidr":{"type":"string","default":"10.0.0.0/16"},"subnets":{"type":"array","items":{"type":"object","properties":{"zone":{"type":"string"}}}}}}}}))]
#[case::gs08(json!({"values":"object | default={\"a\":\"b\"}","list":"[]string | default=[\"x\",\"y\"]"}), json!({}),
    json!({"type":"object","default":{},"properties":{"list":{"type":"array","default":["x","y"],"items":{"type":"string"}},"values":{"type":"object","default":{"a":"b"},"x-kubernetes-preserve-unknown-fields":true}}}))]
#[case::gs09(json!({}), json!({}), json!({"type":"object"}))]
#[case::gs10(json!({"a":{"b":{"c":"integer | default=3"}}}), json!({}),
    json!({"type":"object","default":{},"properties":{"a":{"type":"object","default":{},"properties":{"b":{"type":"object","default":{},"properties":{"c":{"type":"integer","default":3}}}}}}}))]
#[case::gs11(json!({"a":{"b":{"c":"integer | default=3","d":"string | required=true"}}}), json!({}),
    json!({"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","required":["d"],"properties":{"c":{"type":"integer","default":3},"d":{"type":"string"}}}}}}}))]
#[case::gs12(json!({"desc":"string | description=\"say \\\"hi\\\" C:\\\\tmp \\d\""}), json!({}),
    json!({"type":"object","properties":{"desc":{"description":"say \"hi\" C:\\tmp \\d","type":"string"}}}))]
#[case::gs13(json!({"name":"string | required=true description=\"Instance name\"","version":"string | required=true description=\"Kubernetes version\"","image":"string | default=\"nginx:1.27\" description=\"Demo image\"","replicas":"integer | default=1 minimum=1 maximum=10","port":"integer | default=6443 minimum=1 maximum=65535"}), json!({}),
    json!({"type":"object","required":["name","version"],"properties":{"image":{"description":"Demo image","type":"string","default":"nginx:1.27"},"name":{"description":"Instance name","type":"string"},"port":{"type":"integer","default":6443,"maximum":65535,"minimum":1},"replicas":{"type":"integer","default":1,"maximum":10,"minimum":1},"version":{"description":"Kubernetes version","type":"string"}}}))]
#[case::gs14(json!({"ratio":"float | default=0.5 minimum=0.1 maximum=1.5","on":"boolean | default=true"}), json!({}),
    json!({"type":"object","default":{},"properties":{"on":{"type":"boolean","default":true},"ratio":{"type":"number","default":0.5,"maximum":1.5,"minimum":0.1}}}))]
fn golden_conversions(#[case] spec: Value, #[case] types: Value, #[case] expected: Value) {
    assert_eq!(
        spec_schema(&map(spec), &map(types), KroVersion::V0_9_3).unwrap(),
        expected
    );
}

#[rstest]
#[case::se01(json!({"name":"string | required"}), json!({}), "field name: marker key 'required' without a value")]
#[case::se02(json!({"name":"string | foo=bar"}), json!({}), "field name: invalid marker key \"foo\": unknown marker: foo")]
#[case::se03(json!({"name":"Foo"}), json!({}), "field name: unknown type: Foo")]
#[case::se04(json!({"m":"map[int]string"}), json!({}), "field m: map key must be string")]
#[case::se05(json!({"b":"boolean | enum=\"true,false\""}), json!({}), "field b: enum values only supported for string and integer types, got type: boolean")]
#[case::se06(json!({"n":"integer | default=abc"}), json!({}), "field n: default value must be a valid integer, got: abc")]
#[case::se07(json!({"n":"integer | minLength=1"}), json!({}), "field n: minLength marker is only valid for string types, got type: integer")]
#[case::se08(json!({"s":"string | uniqueItems=true"}), json!({}), "field s: uniqueItems marker is only valid for array types, got type: string")]
#[case::se09(json!({"l":"[]string | listMapKey=name"}), json!({}), "field l: listMapKey set while listType is unset, listType must be set to map")]
#[case::se10(json!({"d":"TypeA"}), json!({"TypeA":"TypeB","TypeB":"TypeA"}), "cyclic dependency in type TypeB: graph contains a cycle: TypeA -> TypeB -> TypeA")]
#[case::se11(json!({"l":"[]"}), json!({}), "field l: empty slice element type")]
#[case::se12(json!({"s":"string | enum=\"a,,b\""}), json!({}), "field s: empty enum values are not allowed")]
#[case::se13(json!({"s":"string | validation=\"\""}), json!({}), "field s: validation failed")]
#[case::se14(json!({"l":"[]string | uniqueItems=true listType=map"}), json!({}), "field l: listType attempting to overwrite set type of set, this can happen if you set contradictory markers like unique=true | listType=map")]
#[case::se15(json!({"s":"string | description=\"unterminated"}), json!({}), "field s: unclosed quote")]
#[case::se16(json!({"n":"integer | required=yes"}), json!({}), "field n: failed to parse required marker value: strconv.ParseBool: parsing \"yes\": invalid syntax")]
#[case::se17(json!({"s":"string | pattern=\"\""}), json!({}), "field s: pattern marker value cannot be empty")]
#[case::se18(json!({"d":"string"}), json!({"TypeA":"UndefinedType"}), "node UndefinedType does not exist")]
#[case::se19(json!({"n":"Node"}), json!({"Node":{"children":"[]Node"}}), "self references are not allowed")]
fn golden_errors(#[case] spec: Value, #[case] types: Value, #[case] message: &str) {
    assert_eq!(
        spec_schema(&map(spec), &map(types), KroVersion::V0_9_3).unwrap_err(),
        message
    );
}

/// ≤v0.9.1: `float` is emitted as `type: float` and `validation` replaces the rule list.
#[test]
fn older_kro_versions() {
    let out = spec_schema(
        &map(json!({"r": "float", "id": "string | immutable=true validation=\"size(self) > 1\""})),
        &Map::new(),
        KroVersion::V0_9_1,
    )
    .unwrap();
    assert_eq!(out["properties"]["r"]["type"], "float");
    assert_eq!(
        out["properties"]["id"]["x-kubernetes-validations"],
        json!([{"rule": "size(self) > 1", "message": "validation failed"}])
    );
}

#[test]
fn marker_tokenizer_keeps_brackets_and_quotes() {
    let markers = parse_markers(r#" default={"a": "b c"}  description="x y" "#).unwrap();
    assert_eq!(markers[0].value, r#"{"a": "b c"}"#);
    assert_eq!(markers[1].value, "x y");
    assert_eq!(
        parse_markers("default=]").unwrap_err(),
        "unmatched closing bracket/brace"
    );
    assert_eq!(
        parse_markers("default=[a").unwrap_err(),
        "unclosed bracket/brace"
    );
    assert_eq!(parse_markers("=x").unwrap_err(), "empty marker key");
}
