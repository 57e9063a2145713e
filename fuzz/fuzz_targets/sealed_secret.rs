//! SealedSecrets as the CLI reads them: any text must parse or be refused, never panic, and
//! whatever parses must survive seal's own output unchanged (what `--merge-into` relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seal_shared::sealed_secret::{for_output, parse_sealed_secrets};
use seal_shared::yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = parse_sealed_secrets(text) else {
        return;
    };
    let out: Vec<_> = docs.iter().map(for_output).collect();
    let written = yaml::to_string_multiple(&out).expect("a parsed SealedSecret can be written");
    let again = parse_sealed_secrets(&written).expect("seal reads back what it wrote");
    let parts = |docs: &[seal_shared::sealed_secret::SealedSecret]| {
        docs.iter()
            .map(|d| (d.metadata.clone(), d.spec.clone()))
            .collect::<Vec<_>>()
    };
    assert!(
        parts(&again) == parts(&out),
        "written and read back differ:\n{written}"
    );
});
