use serde_json::Value;

/// `schema.graphql` is generated from the code; a difference means one of them is stale.
#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    let generated = tandem::graphql::sdl();
    assert!(
        on_disk == generated,
        "schema.graphql is out of date: regenerate it with `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn every_type_and_field_has_a_description() {
    let schema = tandem::graphql::schema_builder().finish();
    let response = schema
        .execute(
            "{ __schema { types { name kind description
                 fields { name description args { name description } }
                 inputFields { name description }
                 enumValues { name description } } } }",
        )
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let json = response.data.into_json().unwrap();
    let mut missing = Vec::new();
    for ty in json["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        let builtin = name.starts_with("__")
            || matches!(
                name,
                "String" | "Int" | "Float" | "Boolean" | "ID" | "DateTime"
            );
        if builtin {
            continue;
        }
        if blank(&ty["description"]) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for field in ty[list].as_array().into_iter().flatten() {
                if blank(&field["description"]) {
                    missing.push(format!("{name}.{}", field["name"].as_str().unwrap()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

fn blank(value: &Value) -> bool {
    value.as_str().is_none_or(|s| s.trim().is_empty())
}
