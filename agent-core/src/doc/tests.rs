use super::fixtures;
use super::*;

#[test]
fn every_type_round_trips_through_json() {
    let docs = fixtures::all();
    let types: std::collections::HashSet<DocType> = docs.iter().map(Document::doc_type).collect();
    assert_eq!(types.len(), 11, "one fixture per document type");
    for doc in docs {
        doc.validate().unwrap_or_else(|e| panic!("fixture invalid: {e}"));
        let json = serde_json::to_string(&doc).unwrap();
        let back: Document = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, doc, "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], doc.doc_type().as_str());
        assert_eq!(value["_id"], doc.id().as_str());
        assert_eq!(value["_rev"], doc.rev().0);
        assert!(doc.id().as_str().starts_with(&format!("{}::", doc.doc_type().id_prefix())));
    }
}

#[test]
fn unknown_fields_are_ignored_on_every_type() {
    for doc in fixtures::all() {
        let mut value = serde_json::to_value(&doc).unwrap();
        value["field_from_the_future"] = serde_json::json!({"nested": [1, 2, 3]});
        let back: Document = serde_json::from_value(value).unwrap();
        assert_eq!(back, doc);
    }
}

#[test]
fn step_wire_format_is_op_params_invert_on_match() {
    let step = Step {
        op: StepOp::Size { min_bytes: Some(10), max_bytes: None },
        invert: true,
        on_match: OnMatch::Exclude,
    };
    let v = serde_json::to_value(&step).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"op": "size", "params": {"min_bytes": 10}, "invert": true, "on_match": "exclude"})
    );
    let bad = serde_json::json!({"op": "size", "params": {"min_bytes": -1}, "on_match": "exclude"});
    assert!(serde_json::from_value::<Step>(bad).is_err(), "a negative size is refused");
    let unknown = serde_json::json!({"op": "colour", "params": {}, "on_match": "exclude"});
    assert!(serde_json::from_value::<Step>(unknown).is_err());
}

#[test]
fn deterministic_ids_are_checked() {
    let mut docs = fixtures::all();
    let Document::LabelAssignment(a) = &mut docs[6] else { panic!("fixture order") };
    a.file_id = crate::ids::FileId::generate();
    assert!(docs[6].validate().is_err());

    let mut f = fixtures::file("/a/b.txt");
    f.name = "c.txt".into();
    let err = Document::File(f).validate().unwrap_err();
    assert!(err.reason.contains("name"), "{err}");
}

#[test]
fn file_source_splits_paths() {
    let n = fixtures::node();
    let s = FileSource::new(n.clone(), "/a.txt").unwrap();
    assert_eq!((s.export_parent.as_str(), s.name()), ("/", "a.txt"));
    let s = FileSource::new(n.clone(), "/x/y/z.pdf").unwrap();
    assert_eq!((s.export_parent.as_str(), s.name()), ("/x/y", "z.pdf"));
    for bad in ["", "/", "rel/a", "/a//b", "/a/./b", "/a/../b", "/a/"] {
        assert!(FileSource::new(n.clone(), bad).is_none(), "{bad}");
    }
}

#[test]
fn a_node_advertises_only_an_https_transfer_endpoint() {
    let node_doc = || {
        fixtures::all()
            .into_iter()
            .find_map(|d| match d {
                Document::Node(n) => Some(n),
                _ => None,
            })
            .expect("a node fixture")
    };
    for good in ["https://10.0.0.2:7443", "https://[::1]:7443", "https://host.lan", "https://h:1/"] {
        let mut n = node_doc();
        n.transfer = Some(TransferEndpoint { endpoint: good.into(), cert_fingerprint: "ab".repeat(32) });
        Document::Node(n).validate().unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "http://10.0.0.2:7443",
        "ftp://h:1",
        "https://",
        "https://user:pw@h:1",
        "https://h:1/elsewhere",
        "https://h:1/?x=1",
        "https://h:1/#f",
        "10.0.0.2:7443",
        "",
    ] {
        let mut n = node_doc();
        n.transfer = Some(TransferEndpoint { endpoint: bad.into(), cert_fingerprint: "ab".repeat(32) });
        let err = Document::Node(n).validate().expect_err(bad);
        assert!(err.reason.contains("transfer.endpoint"), "{bad}: {err}");
    }
}
