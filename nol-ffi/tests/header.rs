//! `include/nol.h` is generated from this crate by the pinned cbindgen and committed. This test
//! generates it again and fails when the committed header drifts from the Rust.
//! `scripts/gen-header.sh` (which sets `NOL_BLESS_HEADER=1`) writes it instead.

use std::path::Path;

fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("nol-ffi/cbindgen.toml");
    // The version macro comes from Cargo.toml, never kept by hand.
    config.after_includes = Some(format!(
        "\n/* libnol's version, as nol_version() returns it. */\n#define NOL_VERSION \"{}\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn committed_header_matches_the_rust() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/nol.h");
    let fresh = generate();
    if std::env::var("NOL_BLESS_HEADER").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).expect("write include/nol.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/nol.h is out of date with nol-ffi: run scripts/gen-header.sh and commit it"
    );
}

#[test]
fn header_declares_every_exported_function() {
    let header = generate();
    for name in [
        "nol_version",
        "nol_status_str",
        "nol_last_error",
        "nol_string_free",
        "nol_config_new",
        "nol_client_new",
        "nol_lookup",
        "nol_result_free",
        "nol_normalize",
        "nol_parse_verstat",
        "nol_verify_response",
        "nol_client_stats",
        "nol_config_set",
        "nol_config_set_circuit_breaker",
        "nol_config_set_breaker_failures",
        "nol_config_set_breaker_cool_down_ms",
        "nol_config_set_rate_limit_per_minute",
        "nol_result_json",
        "nol_result_header_block",
        "nol_result_asterisk_variable_count",
        "nol_result_asterisk_variable",
        "nol_precall",
        "nol_precall_result_dnc",
        "nol_precall_result_free",
        "nol_enroll",
        "nol_enroll_result_enrolled",
        "nol_enroll_result_free",
    ] {
        assert!(
            header.contains(&format!("{name}(")),
            "{name} missing from the header"
        );
    }
    assert!(header.contains("typedef struct nol_client nol_client;"));
    assert!(header.contains("NOL_STATUS_OK = 0"));
}
