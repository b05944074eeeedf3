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

/// Every string a client can send says how long it may be.
#[tokio::test]
async fn every_string_argument_documents_its_limit() {
    let schema = tandem::graphql::schema_builder().finish();
    let type_ref = "type { kind name ofType { kind name ofType { kind name ofType { name } } } }";
    let response = schema
        .execute(format!(
            "{{ __schema {{ types {{ name
                 fields {{ name args {{ name description {type_ref} }} }}
                 inputFields {{ name description {type_ref} }} }} }} }}"
        ))
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let json = response.data.into_json().unwrap();
    let (mut unbounded, mut strings) = (Vec::new(), 0);
    for ty in json["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") {
            continue;
        }
        let mut inputs: Vec<(String, &Value)> = ty["inputFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| (format!("{name}.{}", f["name"].as_str().unwrap()), f))
            .collect();
        for field in ty["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().into_iter().flatten() {
                let path = format!(
                    "{name}.{}({})",
                    field["name"].as_str().unwrap(),
                    arg["name"].as_str().unwrap()
                );
                inputs.push((path, arg));
            }
        }
        for (path, input) in inputs {
            let description = input["description"].as_str().unwrap_or_default();
            let says_limit = description.contains("characters") || description.contains("ISO 4217");
            if named_type(&input["type"]) == "String" {
                strings += 1;
                if !says_limit {
                    unbounded.push(path);
                }
            }
        }
    }
    assert!(strings > 30, "only {strings} string inputs found");
    assert!(unbounded.is_empty(), "no limit documented: {unbounded:?}");
}

fn named_type(ty: &Value) -> &str {
    match ty["name"].as_str() {
        Some(name) => name,
        None => named_type(&ty["ofType"]),
    }
}
