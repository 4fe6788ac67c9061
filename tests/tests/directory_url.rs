//! A hop directory from a URL (issue 14, items 4 and 5): `steerer
//! directory serve` in the gateway's namespace serves a hop file; the
//! daemon polls it (`hop_directory_url`, with the ETag: an unchanged
//! directory is not sent again), writes each new version to its
//! `hop_directory` file and applies it at the next tick: a hop the server
//! adds takes new flows, one it removes takes none. Over HTTPS too: the
//! daemon verifies the server against `hop_directory_ca` and fetches
//! nothing from a server that certificate does not vouch for.

mod common;
use common::{directory_entries, hop_id, publish, Folder};

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use steerer_lab::{netns::command_in, steerer::steerer_bin, steerer::SteererProcess, Lab, LabSpec};
use steerer_user::dataplane::PinnedMaps;

const LISTEN: &str = "198.18.0.1:8470";

/// The directory server, killed also when the test fails.
struct Served(Child);
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_polled_directory_adds_and_removes_hops_while_steering() {
    let lab = Lab::build(LabSpec::equal_hops(3)).expect("lab");
    let folder = Folder(std::env::temp_dir().join(format!("steerer-{}-dirurl", lab.prefix)));
    std::fs::create_dir_all(&folder.0).unwrap();
    let served_file = folder.0.join("served.toml");
    publish(&served_file, &directory_entries(&lab, &[1]));
    let _server = Served(
        command_in(&lab.gw_ns(), steerer_bin().unwrap())
            .unwrap()
            .args(["directory", "serve", "--hops"])
            .arg(&served_file)
            .args(["--listen", LISTEN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("directory server starts"),
    );
    let cache = folder.0.join("cache.toml");
    let config = format!(
        "hop_directory = \"{}\"\nhop_directory_url = \"http://{LISTEN}/hops\"\nhop_directory_poll_secs = 1\n{}",
        cache.display(),
        lab.steerer_config_for(2, &[(0, 100.0)])
    );
    let steerer = SteererProcess::start(&lab, &config, &[], false).expect("steerer starts");
    // The first version: fetched (the server may still be starting: the
    // poller retries), written to the cache, applied.
    steerer
        .wait_log("hop directory fetched", 1, Duration::from_secs(15))
        .expect("fetched");
    steerer
        .wait_log("reloaded", 1, Duration::from_secs(10))
        .expect("applied");
    assert!(std::fs::read_to_string(&cache).unwrap().contains("hop1"));
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    let table = || maps.slots(0).unwrap();
    let id = |name: &str| hop_id(&maps, name);
    wait_for("hop1 in the class table", Duration::from_secs(6), || {
        id("hop1").is_some_and(|i| table().contains(&i))
    });
    // Unchanged: polled every second, never fetched again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        steerer.log().matches("hop directory fetched").count(),
        1,
        "an unchanged directory is not sent again:\n{}",
        steerer.log()
    );

    // The server's file changes: hop1 leaves, hop2 joins.
    publish(&served_file, &directory_entries(&lab, &[2]));
    steerer
        .wait_log("hop directory fetched", 2, Duration::from_secs(10))
        .expect("the new version fetched");
    wait_for(
        "hop2 in and hop1 out of the table",
        Duration::from_secs(8),
        || {
            let t = table();
            id("hop2").is_some_and(|i| t.contains(&i)) && id("hop1").is_none_or(|i| !t.contains(&i))
        },
    );
    assert!(
        id("hop0").is_some_and(|i| table().contains(&i)),
        "hop0 stays"
    );
}

/// A CA and a server certificate for the gateway's address, signed by it
/// (PEM files in `dir`): (ca, cert, key).
fn lab_certificates(dir: &std::path::Path, name: &str) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("steerer lab CA {name}"));
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let host = LISTEN.split(':').next().unwrap().to_string();
    let mut server = CertificateParams::new(vec![host]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "steerer lab directory");
    let cert = server.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = [
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    ];
    std::fs::write(&paths[0], ca.pem()).unwrap();
    std::fs::write(&paths[1], cert.pem()).unwrap();
    std::fs::write(&paths[2], key.serialize_pem()).unwrap();
    paths
}

#[test]
fn an_https_directory_is_fetched_only_from_a_server_the_configured_ca_vouches_for() {
    let lab = Lab::build(LabSpec::equal_hops(2)).expect("lab");
    let folder = Folder(std::env::temp_dir().join(format!("steerer-{}-dirtls", lab.prefix)));
    std::fs::create_dir_all(&folder.0).unwrap();
    let served_file = folder.0.join("served.toml");
    publish(&served_file, &directory_entries(&lab, &[1]));
    let [ca, cert, key] = lab_certificates(&folder.0, "good");
    let [other_ca, _, _] = lab_certificates(&folder.0, "other");
    let _server = Served(
        command_in(&lab.gw_ns(), steerer_bin().unwrap())
            .unwrap()
            .args(["directory", "serve", "--hops"])
            .arg(&served_file)
            .args(["--listen", LISTEN, "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("directory server starts"),
    );
    let cache = folder.0.join("cache.toml");
    let config = |ca: &std::path::Path| {
        format!(
            "hop_directory = \"{}\"\nhop_directory_url = \"https://{LISTEN}/hops\"\n\
             hop_directory_ca = \"{}\"\nhop_directory_poll_secs = 1\n{}",
            cache.display(),
            ca.display(),
            lab.steerer_config_for(2, &[(0, 100.0)])
        )
    };
    // A CA that did not sign the server's certificate: nothing fetched.
    let mut steerer =
        SteererProcess::start(&lab, &config(&other_ca), &[], false).expect("steerer starts");
    steerer
        .wait_log(
            "fetching the hop directory failed",
            2,
            Duration::from_secs(15),
        )
        .expect("refused");
    assert!(!cache.exists(), "nothing written from an unverified server");
    let log = steerer.log();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the failure names the certificate:\n{log}"
    );
    assert!(steerer.stop().unwrap());

    // The CA that signed it: fetched, written, applied.
    let steerer = SteererProcess::start(&lab, &config(&ca), &[], false).expect("steerer starts");
    steerer
        .wait_log("hop directory fetched", 1, Duration::from_secs(15))
        .expect("fetched over https");
    steerer
        .wait_log("reloaded", 1, Duration::from_secs(10))
        .expect("applied");
    let maps = PinnedMaps::open_dir(&lab.pin_dir()).unwrap();
    wait_for("hop1 in the class table", Duration::from_secs(6), || {
        hop_id(&maps, "hop1").is_some_and(|i| maps.slots(0).unwrap().contains(&i))
    });
}
