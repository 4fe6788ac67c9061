use super::*;

const MD: &str = "@last-listed 2019-06-06 17:11:13
onion-key
-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBALYAc9UaWSJp7ydMrV
-----END RSA PUBLIC KEY-----
ntor-onion-key FCYA/K3ArWucNWCj+z0xTiF9nf4W0OYdT5jcGNQBhS8=
family $0011BD2485AD45D984EC4159C88FC066E5E3300E
p accept 20-23,43,53,79-81,443
id ed25519 ZXq6fKJAd/jABUJKJwpPXVc4XtCplVYbo8q+kb7b8f0
@last-listed 2019-06-06 17:11:13
onion-key
-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBAKCJaBzcl5rI
-----END RSA PUBLIC KEY-----
p reject 25,119,135-139
p6 accept 80,443
";

fn digest_of(body: &str) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(body.as_bytes()))
}

#[test]
fn microdescs_are_split_digested_and_parsed() {
    let mut m = Microdescs::default();
    m.parse_into(MD, "md").unwrap();
    assert_eq!(m.by_digest.len(), 2);
    let first = &MD[MD.find("onion-key").unwrap()..MD.find("@last-listed 2019-06-06 17:11:13\nonion-key\n-----BEGIN RSA PUBLIC KEY-----\nMIGJAoGBAKCJ").unwrap()];
    let d = m
        .by_digest
        .get(&digest_of(first))
        .expect("digest over onion-key .. end");
    assert_eq!(d.ports.to_ranges(), "20-23,43,53,79-81,443");
    assert_eq!(d.family.len(), 1);
    assert_eq!(d.line, 2);
    let second = m.by_digest.values().find(|d| d.line == 11).unwrap();
    assert_eq!(second.ports.len(), 65535 - 7);
    assert_eq!(second.ports6.as_ref().unwrap().to_ranges(), "80,443");
}

#[test]
fn malformed_microdescs_are_skipped_with_line_and_reason() {
    let bad = MD
        .replace("p accept 20-23,43", "p accept 23-20,43")
        .replace("p6 accept 80,443", "p6 allow 80");
    let mut m = Microdescs::default();
    m.parse_into(&bad, "md").unwrap();
    assert!(m.by_digest.is_empty());
    let reasons: Vec<_> = m.skipped.0.iter().collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let p = reasons
        .iter()
        .find(|r| r.0.contains("bad `p` line"))
        .expect("p reason");
    assert!(p.0.contains("23-20"), "{p:?}");
    assert_eq!(p.1 .1, 8, "line of the bad p line");
    let p6 = reasons
        .iter()
        .find(|r| r.0.contains("bad `p6` line"))
        .expect("p6 reason");
    assert!(p6.0.contains("allow"), "{p6:?}");
    assert_eq!(p6.1 .1, 16);

    let truncated = "onion-key\n-----BEGIN RSA PUBLIC KEY-----\nMIGJ\n";
    let mut m = Microdescs::default();
    m.parse_into(truncated, "md").unwrap();
    assert_eq!(m.skipped.total(), 1);
    assert!(m.skipped.0.keys().next().unwrap().contains("truncated"));
}

const CONSENSUS: &str = "network-status-version 3 microdesc
vote-status consensus
r CalyxInstitute14 ABG9JIWtRdmE7EFZyI/AZuXjMA4 2019-06-06 07:02:05 162.247.74.201 443 80
m DIGESTA
s Exit Fast Guard HSDir Running Stable V2Dir Valid
w Bandwidth=5050
r seele AAoQ1DAR6kkoo19hBAX5K0QztNw 2019-06-06 09:51:51 67.174.243.193 9001 0
m DIGESTB
s Running Stable V2Dir Valid
w Bandwidth=13
r broken AAoQ 2019-06-06
m DIGESTC
s Exit Running
w Bandwidth=1
r nomd AAoQ1DAR6kkoo19hBAX5K0QztNw 2019-06-06 09:51:51 67.174.243.193 9001 0
s Exit Running
w Bandwidth=7
r bad AAoQ1DAR6kkoo19hBAX5K0QztNw 2019-06-06 09:51:51 67.174.243.193 9001 0
m DIGESTD
s BadExit Exit Running
w Bandwidth=9
directory-footer
bandwidth-weights Wed=5000 Wee=10000
";

#[test]
fn consensus_entries_flags_weights_and_skips() {
    let c = Consensus::parse(CONSENSUS, "c").unwrap();
    assert_eq!(c.relays.len(), 3);
    assert_eq!(c.relays[0].bandwidth, 5050);
    assert!(c.relays[0].has_flag("Guard"));
    assert_eq!(c.weights["Wed"], 5000);
    let reasons: Vec<_> = c
        .skipped
        .0
        .iter()
        .map(|(r, &(n, l))| (r.as_str(), n, l))
        .collect();
    assert!(
        reasons.contains(&("`r` line with 3 fields instead of 7", 1, 11)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("entry without an `m` line", 1, 15)),
        "{reasons:?}"
    );

    let mut mds = Microdescs::default();
    mds.by_digest.insert(
        "DIGESTA".into(),
        Microdesc {
            ports: PortSet::all(),
            ports6: None,
            family: vec![],
            line: 1,
        },
    );
    let (exits, skipped) = exits(&c, &mds);
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].weight, 2525.0, "Guard+Exit weighted by Wed");
    assert_eq!(skipped.0["BadExit flag"].0, 1);
}

#[test]
fn not_a_consensus_is_an_error_naming_the_line() {
    let e = Consensus::parse("network-status-version 3\n", "c").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = Consensus::parse("network-status-version 3 microdesc\nm X\n", "c").unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("outside"),
        "{e}"
    );
}
