//! The deployment files against the real binary, as far as this machine can
//! run them (it has no Docker engine):
//! - the image's final stage — its user, state directory, settings and
//!   command — run as that unprivileged user, alone (the embedded default)
//!   and with the compose file's cdrate environment on Kafka + PostgreSQL;
//! - the wiring between the compose services (Prometheus → cdrate,
//!   Grafana → Prometheus, the volumes);
//! - the systemd unit through `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{eventually, free_port, kafka_backend, Backend, Engine, World};

/// The uid and gid the image's `useradd` gives its user.
const IMAGE_UID: u32 = 10001;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The final stage of the Dockerfile, as the container starts it.
#[derive(Debug, Default)]
struct Image {
    user: String,
    workdir: String,
    env: Vec<(String, String)>,
    command: Vec<String>,
    expose: Vec<u16>,
    volumes: Vec<String>,
    /// `COPY src dest` from the build context (not from another stage).
    copies: Vec<(String, String)>,
    /// Every user the final stage's `RUN` lines create, with their uid.
    users: Vec<(String, u32)>,
    /// The `HEALTHCHECK` command (exec form).
    healthcheck: Vec<String>,
}

fn image() -> Image {
    let text = read("Dockerfile");
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    let mut image = Image::default();
    let (mut entrypoint, mut cmd) = (Vec::new(), Vec::new());
    for i in &instructions[last_from + 1..] {
        let (op, rest) = i.split_once(' ').expect("an instruction with arguments");
        let json = || serde_json::from_str::<Vec<String>>(rest).expect("exec form");
        match op {
            "USER" => image.user = rest.to_owned(),
            "WORKDIR" => image.workdir = rest.to_owned(),
            "ENV" => image.env.extend(rest.split_whitespace().map(|kv| {
                let (k, v) = kv.split_once('=').expect("ENV k=v");
                (k.to_owned(), v.to_owned())
            })),
            "ENTRYPOINT" => entrypoint = json(),
            "CMD" => cmd = json(),
            "EXPOSE" => image
                .expose
                .extend(rest.split_whitespace().map(|p| p.parse::<u16>().expect("port"))),
            "VOLUME" => image.volumes = json(),
            "HEALTHCHECK" => {
                let (_, command) = rest.split_once("CMD ").expect("HEALTHCHECK … CMD [...]");
                image.healthcheck = serde_json::from_str(command).expect("exec form");
            }
            "COPY" if !rest.starts_with("--from") => {
                let (src, dest) = rest.split_once(' ').expect("COPY src dest");
                image.copies.push((src.to_owned(), dest.to_owned()));
            }
            "RUN" => {
                for part in rest.split("&&").filter(|p| p.trim().starts_with("useradd ")) {
                    let words: Vec<&str> = part.split_whitespace().collect();
                    let uid = words
                        .iter()
                        .position(|w| *w == "--uid")
                        .and_then(|p| words.get(p + 1))
                        .and_then(|u| u.parse::<u32>().ok())
                        .expect("useradd --uid N");
                    image.users.push((words.last().expect("a user name").to_string(), uid));
                }
            }
            _ => {}
        }
    }
    image.command = entrypoint.into_iter().chain(cmd).collect();
    image
}

/// One service of deploy/docker-compose.yml, read by indentation (the file
/// is ours and kept in block style, except for inline lists).
#[derive(Debug, Default)]
struct Service {
    environment: Vec<(String, String)>,
    ports: Vec<String>,
    volumes: Vec<String>,
}

fn compose() -> Vec<(String, Service)> {
    let text = read("deploy/docker-compose.yml");
    let mut services: Vec<(String, Service)> = Vec::new();
    let (mut in_services, mut key) = (false, String::new());
    let inline_list = |v: &str| -> Vec<String> {
        v.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        match indent {
            0 => in_services = line == "services:",
            2 if in_services => services.push((line.trim_end_matches(':').to_owned(), Service::default())),
            4 if in_services => {
                let (k, v) = line.split_once(':').expect("key: value");
                key = k.to_owned();
                let Some((_, service)) = services.last_mut() else {
                    continue;
                };
                match k {
                    "ports" if !v.trim().is_empty() => service.ports = inline_list(v),
                    "volumes" if !v.trim().is_empty() => service.volumes = inline_list(v),
                    _ => {}
                }
            }
            6 if in_services => {
                let Some((_, service)) = services.last_mut() else {
                    continue;
                };
                match key.as_str() {
                    "environment" => {
                        let (k, v) = line.split_once(':').expect("NAME: value");
                        service
                            .environment
                            .push((k.to_owned(), v.trim().trim_matches('"').to_owned()));
                    }
                    "volumes" => service
                        .volumes
                        .push(line.trim_start_matches("- ").trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    services
}

fn service<'a>(services: &'a [(String, Service)], name: &str) -> &'a Service {
    &services
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("compose service {name}"))
        .1
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A container of the image, played on this machine: the binary where the
/// image puts it, the build-context copies, the state directory owned by
/// the image's user, and commands run as that user with only the image's
/// environment (plus `extra`). Paths under `/` map into `root`.
struct Container {
    root: PathBuf,
    image: Image,
    env: Vec<(String, String)>,
    as_user: bool,
}

impl Container {
    fn new(world: &World, extra: &[(String, String)]) -> Container {
        let image = image();
        let root = world.dir.join("container");
        let bin = root.join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        // A link, not a copy: the debug binary is large and every run
        // keeps its world's directory.
        let binary = bin.join("cdrate");
        if std::fs::hard_link(env!("CARGO_BIN_EXE_cdrate"), &binary).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_cdrate"), &binary).unwrap();
        }
        for (src, dest) in &image.copies {
            copy_dir(&repo().join(src), &root.join(dest.trim_start_matches('/')));
        }
        let state = root.join(image.workdir.trim_start_matches('/'));
        std::fs::create_dir_all(&state).unwrap();
        // Only root can become the image's user; elsewhere run as whoever runs the test.
        let as_user = is_root();
        if as_user {
            std::os::unix::fs::chown(&state, Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
        } else {
            println!("not root: the image's commands run as the current user, not uid {IMAGE_UID}");
        }
        let under_root = |v: &str| -> String {
            match v.find("/var/lib/").or_else(|| v.find("/usr/share/")) {
                Some(at) => format!("{}{}{}", &v[..at], root.display(), &v[at..]),
                None => v.to_owned(),
            }
        };
        let mut env: Vec<(String, String)> = image.env.iter().map(|(k, v)| (k.clone(), under_root(v))).collect();
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), under_root(v)));
        }
        Container {
            root,
            image,
            env,
            as_user,
        }
    }

    fn state(&self) -> PathBuf {
        self.root.join(self.image.workdir.trim_start_matches('/'))
    }

    /// `argv` (argv[0] an absolute path in the image) as the image's user.
    fn command(&self, argv: &[String]) -> Command {
        let program = self.root.join(argv[0].trim_start_matches('/'));
        let mut cmd = if self.as_user {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={IMAGE_UID}"),
                format!("--regid={IMAGE_UID}"),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(&argv[1..])
            .current_dir(self.state())
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.state())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The image's own command (ENTRYPOINT + CMD), listening on a free port.
    fn serve(&mut self) -> Engine {
        let listen = self
            .env
            .iter()
            .find(|(k, _)| k == "CDRATE_SERVER__LISTEN")
            .map(|(_, v)| v.clone())
            .expect("the image sets CDRATE_SERVER__LISTEN");
        let (host, port) = listen.rsplit_once(':').unwrap();
        assert_eq!(host, "0.0.0.0", "the image listens on every interface");
        assert!(
            self.image.expose.contains(&port.parse().unwrap()),
            "the image exposes its listen port {port}"
        );
        let port = free_port();
        self.env.retain(|(k, _)| k != "CDRATE_SERVER__LISTEN");
        self.env
            .push(("CDRATE_SERVER__LISTEN".into(), format!("0.0.0.0:{port}")));
        let log = self.root.join("engine.log");
        let mut cmd = self.command(&self.image.command);
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        Engine::launch(cmd, format!("127.0.0.1:{port}").parse().unwrap(), log)
    }

    /// The image's `HEALTHCHECK` command: did it report healthy?
    fn healthy(&self) -> bool {
        let out = self.command(&self.image.healthcheck).output().unwrap();
        out.status.success()
    }

    /// `docker compose exec cdrate cdrate token create …`: the secret.
    fn token(&self) -> String {
        let argv: Vec<String> = [
            "/usr/local/bin/cdrate",
            "token",
            "create",
            "--scope",
            "admin",
            "--name",
            "ops",
        ]
        .map(String::from)
        .to_vec();
        let out = self.command(&argv).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Every line the engine logged is a JSON object (`--log-format json`).
    fn assert_json_log(&self) {
        let text = std::fs::read_to_string(self.root.join("engine.log")).unwrap();
        assert!(!text.trim().is_empty(), "the engine logged something");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v.is_object(), "{line}");
        }
    }

    /// Everything in the state directory belongs to the image's user.
    fn assert_state_owned(&self) {
        if !self.as_user {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        for entry in std::fs::read_dir(self.state()).unwrap() {
            let entry = entry.unwrap();
            assert_eq!(
                entry.metadata().unwrap().uid(),
                IMAGE_UID,
                "{} belongs to the image's user",
                entry.path().display()
            );
        }
    }
}

#[test]
fn the_image_is_built_as_documented() {
    let image = image();
    let (user, uid) = image.users.first().cloned().expect("the image creates its user");
    assert_eq!(
        (user.as_str(), uid),
        (image.user.as_str(), IMAGE_UID),
        "USER is the created user"
    );
    assert_ne!(image.user, "root");
    assert_eq!(
        image.volumes,
        vec![image.workdir.clone()],
        "the state directory is the volume"
    );
    assert_eq!(image.command[0], "/usr/local/bin/cdrate");
    assert_eq!(image.healthcheck, ["/usr/local/bin/cdrate", "ready"]);
    for (src, _) in &image.copies {
        assert!(repo().join(src).exists(), "COPY {src} is in the build context");
    }
    let ignored = read(".dockerignore");
    assert!(
        ignored.lines().any(|l| l.trim() == "target"),
        "the build context leaves target/ out"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_alone_serves_the_embedded_default_from_its_state_directory() {
    let world = World::new("deploy_image", &Backend::Embedded).await;
    let mut container = Container::new(&world, &[]);
    assert!(
        !container.env.iter().any(|(k, _)| k.starts_with("CDRATE_IMPORT")),
        "the image imports nothing by itself"
    );
    let engine = tokio::task::block_in_place(|| container.serve());
    for file in ["cdrate.db", "bus.db"] {
        assert!(container.state().join(file).exists(), "{file} in the state directory");
    }
    container.assert_state_owned();
    tokio::task::block_in_place(|| {
        assert!(container.healthy(), "HEALTHCHECK passes on a ready engine");
        engine.stop();
        assert!(!container.healthy(), "and fails once it is gone");
    });
    container.assert_json_log();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_with_the_compose_environment_rates_the_readme_call() {
    let Some(backend) = kafka_backend() else { return };
    let Backend::KafkaPostgres { brokers, .. } = &backend else {
        unreachable!()
    };
    let services = compose();
    let cdrate = service(&services, "cdrate");
    // The compose file's environment, its service addresses pointed at this
    // run's PostgreSQL and broker (and a namespace of its own on the broker).
    let world = World::new("deploy_compose", &backend).await;
    let mut env = Vec::new();
    for (k, v) in &cdrate.environment {
        let v = match k.as_str() {
            "CDRATE_STORE__URL" => {
                assert!(v.contains("@postgres:5432/"), "{v}: the postgres service");
                world.store_url.clone()
            }
            "CDRATE_BUS__KAFKA_BROKERS" => {
                assert_eq!(v, "kafka:9092", "the kafka service's listener");
                brokers.clone()
            }
            _ => v.clone(),
        };
        env.push((k.clone(), v));
    }
    let namespace = world
        .env
        .iter()
        .find(|(k, _)| k == "CDRATE_BUS__NAMESPACE")
        .cloned()
        .unwrap();
    env.push(namespace);
    let mut container = Container::new(&world, &env);
    let engine = tokio::task::block_in_place(|| container.serve());
    let token = tokio::task::block_in_place(|| container.token());
    let auth = format!("Bearer {token}");
    let call = r#"{"id": "demo-1", "version": 1, "source": "generic", "account_key": "acme",
        "direction": "outbound", "caller": "1001", "callee": "+44 20 7946 0000",
        "start_at": "2026-11-20T18:30:00Z", "answer_at": "2026-11-20T18:30:04Z",
        "end_at": "2026-11-20T18:32:09Z", "duration_ms": 129000, "billable_ms": 125000,
        "disposition": "answered"}"#;
    let r = engine
        .client()
        .request_with(
            "POST",
            "/ingest/calls",
            Some("application/json"),
            &[("Authorization", &auth)],
            call.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let addr = engine.addr;
    eventually("the README's call rated", Duration::from_secs(60), || {
        let auth = auth.clone();
        async move {
            let r = cdrate_benches::http::Client::bare(addr)
                .request_with("GET", "/v1/calls?account=acme", None, &[("Authorization", &auth)], b"")
                .map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
            let found = v["calls"]
                .as_array()
                .and_then(|calls| calls.iter().find(|c| c["id"] == "demo-1"));
            match found {
                Some(c) if c["cost"] == "0.0315" && c["destination"] == "United Kingdom London" => Ok(()),
                _ => Err(v.to_string()),
            }
        }
    })
    .await;
    // Prometheus scrapes it without a token, as deploy/prometheus does.
    let metrics = cdrate_benches::http::Client::bare(addr).get("/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    tokio::task::block_in_place(|| engine.stop());
    container.assert_state_owned();
    container.assert_json_log();
}

#[test]
fn prometheus_and_grafana_point_at_the_compose_services() {
    let services = compose();
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["postgres", "kafka", "cdrate", "prometheus", "grafana"] {
        assert!(names.contains(&expected), "compose service {expected}");
    }
    let image = image();
    let port = image.expose[0];
    assert_eq!(service(&services, "cdrate").ports, vec![format!("{port}:{port}")]);
    assert_eq!(
        service(&services, "cdrate").volumes,
        vec![format!("cdrate:{}", image.workdir)],
        "the state directory on a named volume"
    );
    // Prometheus scrapes the cdrate service on the image's port.
    let prometheus = read("deploy/prometheus/prometheus.yml");
    assert!(prometheus.contains("metrics_path: /metrics"));
    assert!(
        prometheus.contains(&format!(r#"targets: ["cdrate:{port}"]"#)),
        "{prometheus}"
    );
    let mounted = |svc: &str, inside: &str| -> PathBuf {
        let volume = service(&services, svc)
            .volumes
            .iter()
            .find_map(|v| {
                let mut parts = v.split(':');
                let (from, to) = (parts.next()?, parts.next()?);
                (to == inside).then(|| repo().join("deploy").join(from))
            })
            .unwrap_or_else(|| panic!("{svc} mounts {inside}"));
        assert!(volume.exists(), "{}", volume.display());
        volume
    };
    mounted("prometheus", "/etc/prometheus/prometheus.yml");
    // Grafana reads Prometheus by its service name, and its dashboards from
    // the folder the provisioning file names, which compose mounts.
    let provisioning = mounted("grafana", "/etc/grafana/provisioning");
    let datasources = std::fs::read_to_string(provisioning.join("datasources/prometheus.yml")).unwrap();
    assert!(datasources.contains("url: http://prometheus:9090"), "{datasources}");
    assert_eq!(service(&services, "prometheus").ports, vec!["9090:9090".to_owned()]);
    let dashboards = std::fs::read_to_string(provisioning.join("dashboards/cdrate.yml")).unwrap();
    let path = dashboards
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .map(|p| p.trim().trim_matches('"').to_owned())
        .expect("a dashboards path");
    let folder = mounted("grafana", &path);
    assert!(std::fs::read_dir(folder)
        .unwrap()
        .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "json")));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert_ne!(
            std::env::var("CDRATE_TEST_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "CDRATE_TEST_REQUIRE_SERVICES=1 but systemd-analyze is missing"
        );
        println!("skipped: systemd-analyze not installed");
        return;
    }
    let unit = read("deploy/systemd/cdrate.service");
    for hardening in [
        "User=cdrate",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=cdrate",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.lines().any(|l| l == hardening), "{hardening}");
    }
    // verify checks ExecStart's binary exists, so point it at the one built.
    let dir = std::env::temp_dir().join(format!("cdrate-e2e-systemd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cdrate.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/cdrate", env!("CARGO_BIN_EXE_cdrate")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // An unknown or misspelt directive is only a warning; fail on any.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("cdrate.service")).collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
