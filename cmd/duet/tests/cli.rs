//! The `duet` command line is a contract: its subcommands and flags must stay
//! as documented.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(args)
        .output()
        .expect("duet runs");
    assert!(
        out.status.success(),
        "duet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serve_flags_are_the_documented_ones() {
    assert!(help(&["--help"]).contains("serve"));
    let serve = help(&["serve", "--help"]);
    for flag in [
        "--config <FILE>",
        "--data-dir <DIR>",
        "--mysql-addr <HOST:PORT>",
        "--status-addr <HOST:PORT>",
    ] {
        assert!(serve.contains(flag), "missing {flag} in:\n{serve}");
    }
}

#[test]
fn version_is_reported() {
    assert!(help(&["--version"]).starts_with("duet "));
}

#[test]
fn bench_ch_flags_are_the_documented_ones() {
    for args in [
        &["bench", "ch", "--help"][..],
        &["bench", "ch", "load", "--help"][..],
        &["bench", "ch", "run", "--help"][..],
    ] {
        let ch = help(args);
        for flag in [
            "--warehouses <W>",
            "--duration <SECS>",
            "--oltp-workers <N>",
            "--olap-workers <M>",
            "--embedded",
            "--target <mysql://USER:PASS@HOST:PORT/DB>",
            "--out <DIR>",
            "--interference",
        ] {
            assert!(
                ch.contains(flag),
                "missing {flag} in `duet {args:?}`:\n{ch}"
            );
        }
    }
}

#[test]
fn bench_ch_refuses_a_bad_target() {
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["bench", "ch", "--target", "not-a-url", "--quiet"])
        .output()
        .expect("duet runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target not-a-url"));
}
