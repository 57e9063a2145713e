//! seal never writes an item it would refuse to open: the recipient bound holds at sealing.

use seal_shared::keys::SealIdentity;
use seal_shared::limits::MAX_RECIPIENTS;

use crate::support::*;

#[test]
fn sealing_to_more_recipients_than_seal_opens_is_refused() {
    let ws = Workspace::new();
    let recipients = |count: usize| {
        (0..count)
            .map(|_| SealIdentity::generate().recipient().recipient.to_string() + "\n")
            .collect::<String>()
    };
    ws.write("in.yaml", secret("prod", "db", &[("password", SENTINEL)]));

    ws.write("most.txt", recipients(MAX_RECIPIENTS));
    ws.seal(&["encrypt", "-R", "most.txt", "in.yaml", "-o", "ok.yaml"])
        .ok();

    ws.write("too-many.txt", recipients(MAX_RECIPIENTS + 1));
    ws.seal(&["encrypt", "-R", "too-many.txt", "in.yaml", "-o", "out.yaml"])
        .fails()
        .stderr_has("in.yaml")
        .stderr_has(&format!(
            "{} recipients given; an item may be sealed to at most {MAX_RECIPIENTS}",
            MAX_RECIPIENTS + 1
        ))
        .stderr_has("hint: ");
    assert!(!exists(&ws.path("out.yaml")));
}
