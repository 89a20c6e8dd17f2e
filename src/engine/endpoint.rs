//! Whether the engine runs its containers on this machine. A compile
//! bind-mounts this machine's folders (the current directory, the paths in
//! its arguments, the agent binary); an engine elsewhere (`DOCKER_HOST=tcp://`
//! or `ssh://`, a docker context with such an endpoint, podman's remote mode
//! through `CONTAINER_HOST`, `CONTAINER_CONNECTION` or `remote = true`) would
//! mount the folders of the same names on its own machine. The engine client
//! says where it goes: podman's `version` has a server part only when it is
//! remote, and `docker context inspect` reports the endpoint that
//! `DOCKER_HOST`, `DOCKER_CONTEXT` and the config's current context select.

use serde::{Deserialize, Serialize};

/// Where an engine's containers run, for bind mounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    Local,
    /// Elsewhere; how it is reached, for the error (`at tcp://h:2375`).
    Remote(String),
}

/// The refusal of a command that bind-mounts this machine's folders.
#[derive(Debug, thiserror::Error)]
#[error(
    "the engine ({engine}) is remote: bind mounts would name folders on its machine, not \
     this one's; to compile, start 'qemu-cross-cc serve TARGET --allow CIDR' through it and \
     compile here with a local engine and QEMU_CROSS_CC_DISTCC_HOSTS (see docs/scale-out.md), \
     or set QEMU_CROSS_CC_ENGINE_LOCAL=1 if it runs on this machine"
)]
pub struct RemoteEngine {
    /// The engine and where it is: `docker at tcp://127.0.0.1:2375`.
    pub engine: String,
}

/// The variables that point an engine client at another service (and the
/// config files that may): part of every remembered engine fact's key, so
/// that exporting one is seen at once.
const ENV: [&str; 7] = [
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
    "CONTAINERS_CONF",
    "CONTAINERS_CONF_OVERRIDE",
];

/// `NAME=value` of each variable of `ENV` that is set, `|`-separated.
pub fn env_key() -> String {
    env_key_of(|v| std::env::var_os(v).map(|s| s.to_string_lossy().into_owned()))
}

fn env_key_of(var: impl Fn(&str) -> Option<String>) -> String {
    ENV.iter()
        .filter_map(|v| Some(format!("{v}={}", var(v)?)))
        .collect::<Vec<_>>()
        .join("|")
}

/// `QEMU_CROSS_CC_ENGINE_LOCAL=1`: the user says the engine runs on this
/// machine whatever its endpoint (a `tcp://127.0.0.1` daemon of its own).
pub fn declared_local() -> bool {
    std::env::var("QEMU_CROSS_CC_ENGINE_LOCAL")
        .ok()
        .and_then(|v| crate::host::switch(&v))
        == Some(true)
}

/// A docker endpoint as the client reports it: a unix socket (or a Windows
/// named pipe) is this machine's, an empty one the client's default; any
/// other (`tcp://`, `ssh://`, `http://`, a bare `host:port`, which docker
/// takes for tcp) is another machine's, or may be.
pub fn docker(host: &str) -> Endpoint {
    let host = host.trim();
    if host.is_empty() || host.starts_with("unix://") || host.starts_with("npipe://") {
        Endpoint::Local
    } else {
        Endpoint::Remote(format!("at {host}"))
    }
}

/// docker's endpoint when its client cannot say (one without contexts,
/// before 19.03): only `DOCKER_HOST` selected one then.
pub fn docker_from_env(var: impl Fn(&str) -> Option<String>) -> Endpoint {
    docker(&var("DOCKER_HOST").unwrap_or_default())
}

/// podman's endpoint from its `version --format json`: a `Server` part
/// only in remote mode. Where it goes comes from the variables, which
/// take precedence over containers.conf in that order.
pub fn podman(version_json: &[u8], var: impl Fn(&str) -> Option<String>) -> Endpoint {
    let remote = serde_json::from_slice::<serde_json::Value>(version_json)
        .is_ok_and(|v| v.get("Server").is_some_and(|s| !s.is_null()));
    if !remote {
        return Endpoint::Local;
    }
    let set = |name| var(name).filter(|v| !v.is_empty());
    Endpoint::Remote(if let Some(host) = set("CONTAINER_HOST") {
        format!("at {host}")
    } else if let Some(name) = set("CONTAINER_CONNECTION") {
        format!("through connection {name}")
    } else {
        "in remote mode, per containers.conf".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_variable_that_moves_an_engine_is_in_the_key() {
        assert_eq!(env_key_of(env(&[("PATH", "/bin")])), "");
        let tcp = env_key_of(env(&[("DOCKER_HOST", "tcp://127.0.0.1:2375")]));
        assert_eq!(tcp, "DOCKER_HOST=tcp://127.0.0.1:2375");
        assert_ne!(
            tcp,
            env_key_of(env(&[("DOCKER_HOST", "tcp://127.0.0.1:2376")]))
        );
        // Set but empty is not unset (docker and podman may tell them apart).
        assert_ne!(env_key_of(env(&[("CONTAINER_HOST", "")])), "");
        for v in ENV {
            assert!(env_key_of(env(&[(v, "x")])).starts_with(v), "{v}");
        }
    }

    #[test]
    fn docker_endpoints_are_classified() {
        for local in [
            "unix:///var/run/docker.sock",
            "unix:///run/user/1000/docker.sock",
            "npipe:////./pipe/docker_engine",
            "",
            " \n",
        ] {
            assert_eq!(docker(local), Endpoint::Local, "{local:?}");
        }
        for remote in [
            "tcp://127.0.0.1:2375",
            "tcp://build1:2376",
            "ssh://me@build1",
            "http://build1:2375",
            "build1:2375",
        ] {
            assert_eq!(
                docker(&format!("{remote}\n")),
                Endpoint::Remote(format!("at {remote}")),
                "{remote:?}"
            );
        }
    }

    #[test]
    fn docker_without_contexts_goes_by_docker_host() {
        assert_eq!(docker_from_env(env(&[])), Endpoint::Local);
        assert_eq!(
            docker_from_env(env(&[("DOCKER_CONTEXT", "far")])),
            Endpoint::Local
        );
        assert_eq!(
            docker_from_env(env(&[
                ("DOCKER_HOST", "ssh://me@far"),
                ("DOCKER_CONTEXT", "default")
            ])),
            Endpoint::Remote("at ssh://me@far".into())
        );
        assert_eq!(
            docker_from_env(env(&[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")])),
            Endpoint::Local
        );
    }

    #[test]
    fn podman_says_when_it_is_remote() {
        let local = br#"{"Client":{"Version":"4.3.1"}}"#;
        let remote = br#"{"Client":{"Version":"4.3.1"},"Server":{"Version":"4.3.1"}}"#;
        let both = [
            ("CONTAINER_HOST", "unix:///tmp/p.sock"),
            ("CONTAINER_CONNECTION", "far"),
        ];
        assert_eq!(podman(local, env(&both)), Endpoint::Local);
        assert_eq!(
            podman(br#"{"Client":{},"Server":null}"#, env(&both)),
            Endpoint::Local
        );
        // A stand-in engine that prints nothing, or something else.
        assert_eq!(podman(b"", env(&both)), Endpoint::Local);
        assert_eq!(podman(b"Version: 4.3.1", env(&both)), Endpoint::Local);
        // CONTAINER_HOST over CONTAINER_CONNECTION over containers.conf.
        assert_eq!(
            podman(remote, env(&both)),
            Endpoint::Remote("at unix:///tmp/p.sock".into())
        );
        assert_eq!(
            podman(
                remote,
                env(&[("CONTAINER_HOST", ""), ("CONTAINER_CONNECTION", "far")])
            ),
            Endpoint::Remote("through connection far".into())
        );
        assert_eq!(
            podman(remote, env(&[])),
            Endpoint::Remote("in remote mode, per containers.conf".into())
        );
    }

    #[test]
    fn the_refusal_is_one_line_naming_the_way_out() {
        let e = RemoteEngine {
            engine: "docker at tcp://127.0.0.1:2375".into(),
        }
        .to_string();
        assert!(!e.contains('\n'));
        assert!(e.starts_with("the engine (docker at tcp://127.0.0.1:2375) is remote"));
        for part in [
            "qemu-cross-cc serve",
            "QEMU_CROSS_CC_DISTCC_HOSTS",
            "QEMU_CROSS_CC_ENGINE_LOCAL=1",
        ] {
            assert!(e.contains(part), "{e}");
        }
    }
}
