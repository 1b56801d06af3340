//! The configuration file as an operator meets it: `sfu config check`
//! validates without starting (an unknown key or bad value named with its
//! line), and `log.format = "json"` makes every log line a JSON object.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn sfu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sfu"));
    c.env_remove("RUST_BACKTRACE").env_remove("RUST_LOG");
    c
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sfu-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_check_accepts_the_sample_and_binds_nothing() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/sfu.sample.toml");
    let out = sfu()
        .args(["config", "check", "--config", sample])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "sfu.sample.toml: ok (http 0.0.0.0:7880, udp port 7882, tcp port 7881, 1 app(s), log format Text)"
        ),
        "{stdout}"
    );
}

#[test]
fn config_check_names_an_unknown_key_and_its_line() {
    for (text, line, key) in [
        (
            "[server]\nbind = \"127.0.0.1:7880\"\nudpPrt = 7882\n",
            "line 3, column 1",
            "unknown field `udpPrt`",
        ),
        (
            "[limits]\nplayWaitMs = 5\n\n[limits2]\n",
            "line 4, column 2",
            "unknown field `limits2`",
        ),
        (
            "[[apps]]\nappID = 1\nsecret = \"s\"\nmaxRoms = 3\n",
            "line 4, column 1",
            "unknown field `maxRoms`",
        ),
        (
            "[log]\nformat = \"xml\"\n",
            "line 2, column 10",
            "unknown variant `xml`, expected `text` or `json`",
        ),
    ] {
        let path = write("bad.toml", text);
        let out = sfu()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains(&format!("TOML parse error at {line}")),
            "{text}: {stderr}"
        );
        assert!(stderr.contains(key), "{text}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// With `log.format = "json"` every line the server writes to stderr is a
/// JSON object with a timestamp, level, target and message.
#[test]
fn json_log_lines() {
    let path = write(
        "json.toml",
        "[server]\nbind = \"127.0.0.1:0\"\nudpBindIp = \"127.0.0.1\"\nudpPort = 0\ntcpPort = 0\n\
         [log]\nformat = \"json\"\n[[apps]]\nappID = 1\nsecret = \"s\"\n",
    );
    let mut child = sfu()
        .arg("--config")
        .arg(&path)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut messages = Vec::new();
    // Start-up writes two info lines: the media plane's, then the listener's.
    for _ in 0..2 {
        let line = lines.next().expect("a log line").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert!(
            v["timestamp"].is_string() && v["target"].is_string(),
            "{line}"
        );
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(messages, ["media plane listening", "sfu listening"]);
}
