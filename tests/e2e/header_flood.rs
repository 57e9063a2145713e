//! Items built to be expensive to open (issue 10): thousands of stanzas in one header. The
//! operator refuses them at once with HeaderTooLarge, and a valid SealedSecret created after
//! them is unsealed without waiting behind them.

use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::CustomResourceExt;
use kube::api::PostParams;
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const WAIT: Duration = Duration::from_secs(20);

/// An age v1 file whose header holds `stanzas` junk stanzas: about 100 bytes each, as in the
/// report (9,000 of them made an 880 KB item that took 246 s to open).
fn flood(stanzas: usize) -> String {
    let mut item = b"age-encryption.org/v1\n".to_vec();
    for i in 0..stanzas {
        item.extend_from_slice(format!("-> junk {i:043}\n{}E\n", "A".repeat(42)).as_bytes());
    }
    item.extend_from_slice(format!("--- {}\n", "A".repeat(43)).as_bytes());
    item.extend_from_slice(&[0; 56]);
    STANDARD.encode(item)
}

#[tokio::test]
async fn header_floods_are_refused_at_once_and_hold_up_nothing() -> Result<()> {
    let ns = TestNamespace::create("flood").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    let sealed_api = ns.api::<SealedSecret>();

    let floods = ["flood-0", "flood-1", "flood-2", "flood-3"];
    for name in floods {
        let mut sealed = seal_secret(&ns.name, name, "Opaque", &[("password", "x")])?;
        sealed
            .spec
            .encrypted_data
            .insert("password".into(), flood(9_000));
        sealed_api.create(&PostParams::default(), &sealed).await?;
    }
    let valid = seal_secret(&ns.name, "db", "Opaque", &[("password", "y")])?;
    sealed_api.create(&PostParams::default(), &valid).await?;

    eventually("the valid SealedSecret to be unsealed", WAIT, || async {
        Ok(ns
            .ready_reason("db")
            .await?
            .filter(|(s, r)| s == "True" && r == "Unsealed"))
    })
    .await?;
    for name in floods {
        eventually(&format!("HeaderTooLarge on {name}"), WAIT, || async {
            Ok(ns
                .ready_reason(name)
                .await?
                .filter(|(s, r)| s == "False" && r == "HeaderTooLarge"))
        })
        .await?;
    }
    let (code, _) = operator.get(operator.http_port, "/readyz").await?;
    assert_eq!(code, 200, "the operator stopped answering its probe");
    ns.delete().await
}
