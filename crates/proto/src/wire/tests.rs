//! Parsing of every wire message: versions, limits, malformed input.

use super::*;

#[test]
fn client_message_shape() {
    let env = ClientEnvelope::new(
        Some(3),
        ClientMsg::Ring {
            to: Username::parse("bob").unwrap(),
            code: None,
            pow: None,
            group: None,
            invite: false,
        },
    );
    let s = serde_json::to_string(&env).unwrap();
    assert_eq!(s, r#"{"v":1,"id":3,"t":"ring","to":"bob"}"#);
    assert_eq!(ClientEnvelope::parse(&s).unwrap(), env);
}

#[test]
fn group_ring_and_pass_shapes() {
    let token = Key32([7; 32]);
    let ring = ClientEnvelope::new(
        None,
        ClientMsg::Ring {
            to: Username::parse("bob").unwrap(),
            code: None,
            pow: None,
            group: Some(token),
            invite: false,
        },
    );
    let s = serde_json::to_string(&ring).unwrap();
    let b64 = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
    assert_eq!(
        s,
        format!(r#"{{"v":1,"t":"ring","to":"bob","group":"{b64}"}}"#)
    );
    assert_eq!(ClientEnvelope::parse(&s).unwrap(), ring);
    let invite = r#"{"v":1,"t":"ring","to":"bob","invite":true}"#;
    assert!(matches!(
        ClientEnvelope::parse(invite).unwrap().msg,
        ClientMsg::Ring {
            invite: true,
            group: None,
            ..
        }
    ));
    let join = ClientEnvelope::new(Some(1), ClientMsg::GroupJoin { token });
    assert_eq!(
        serde_json::to_string(&join).unwrap(),
        format!(r#"{{"v":1,"id":1,"t":"group_join","token":"{b64}"}}"#)
    );
}

#[test]
fn origin_is_normalized() {
    assert_eq!(normalize_origin("HTTP://Host:8/v1/ws/"), "http://host:8");
    assert_eq!(normalize_origin("https://h/"), "https://h");
}

#[test]
fn not_found_is_one_fixed_byte_string() {
    let s = serde_json::to_string(&ServerEnvelope::error(None, ErrorCode::NotFound, None)).unwrap();
    assert_eq!(s, r#"{"v":1,"t":"error","code":"not_found"}"#);
}

#[test]
fn rejects_bad_input() {
    assert!(matches!(
        ClientEnvelope::parse("{"),
        Err(ProtoError::Malformed(_))
    ));
    assert!(matches!(
        ClientEnvelope::parse(r#"{"v":2,"t":"ping"}"#),
        Err(ProtoError::BadVersion(2))
    ));
    assert!(matches!(
        ClientEnvelope::parse(r#"{"v":1,"t":"launch_missiles"}"#),
        Err(ProtoError::Malformed(_))
    ));
    let big = format!(
        r#"{{"v":1,"t":"ping","x":"{}"}}"#,
        "a".repeat(limits::MAX_WS_MESSAGE)
    );
    assert!(matches!(
        ClientEnvelope::parse(&big),
        Err(ProtoError::TooLarge { .. })
    ));
    let key = r#"{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let keys = vec![key; limits::MAX_ONE_TIME_KEYS + 1].join(",");
    let too_many =
        ClientEnvelope::parse(&format!(r#"{{"v":1,"t":"upload_otks","keys":[{keys}]}}"#));
    assert!(
        matches!(too_many, Err(ProtoError::TooMany { count: 51, .. })),
        "{too_many:?}"
    );
    assert_eq!(
        too_many.unwrap_err().to_string(),
        "51 one-time keys are over the limit of 50"
    );
    let blob = crate::bytes::encode_b64(&vec![0u8; limits::MAX_RELAY_BLOB + 1]);
    let relay = format!(r#"{{"v":1,"t":"relay","ring_id":"r","blob":"{blob}"}}"#);
    assert!(matches!(
        ClientEnvelope::parse(&relay),
        Err(ProtoError::TooLarge { .. })
    ));
}

#[test]
fn modes_and_presence_modes_read_back_by_name() {
    for (m, name) in [
        (Mode::Public, "public"),
        (Mode::Default, "default"),
        (Mode::Strict, "strict"),
    ] {
        assert_eq!(m.as_str(), name);
        assert_eq!(Mode::parse(name), Some(m));
    }
    for (p, name) in [
        (PresenceMode::Exact, "exact"),
        (PresenceMode::Recent, "recent"),
        (PresenceMode::Hidden, "hidden"),
    ] {
        assert_eq!(p.as_str(), name);
        assert_eq!(PresenceMode::parse(name), Some(p));
    }
    assert_eq!(Mode::parse("open"), None);
    assert_eq!(PresenceMode::parse("Exact"), None);
}

/// The limits hold at exactly the limit (cargo-mutants found `>` and `>=` untold apart).
#[test]
fn limits_are_inclusive() {
    assert!(check_size(10, 10).is_ok());
    assert!(check_size(11, 10).is_err());
    let keys = |n: usize| {
        let key = SignedOtk {
            key: Key32([1; 32]),
            sig: crate::Sig64([2; 64]),
        };
        serde_json::to_string(&ClientEnvelope::new(
            Some(1),
            ClientMsg::UploadOtks { keys: vec![key; n] },
        ))
        .unwrap()
    };
    let max = limits::MAX_ONE_TIME_KEYS;
    assert!(ClientEnvelope::parse(&keys(max)).is_ok());
    assert!(matches!(
        ClientEnvelope::parse(&keys(max + 1)),
        Err(ProtoError::TooMany { .. })
    ));
    // A message of exactly the limit is read (and found malformed), one byte more is too large.
    let pad = |len: usize| format!("{{\"v\":1,\"t\":\"ping\",\"x\":\"{}", "a".repeat(len - 23));
    let at = pad(limits::MAX_WS_MESSAGE);
    assert_eq!(at.len(), limits::MAX_WS_MESSAGE);
    assert!(matches!(
        ClientEnvelope::parse(&at),
        Err(ProtoError::Malformed(_))
    ));
    assert!(matches!(
        ClientEnvelope::parse(&pad(limits::MAX_WS_MESSAGE + 1)),
        Err(ProtoError::TooLarge { .. })
    ));
}
