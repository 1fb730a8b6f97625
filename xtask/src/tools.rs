//! Installs the real clients the interop tests drive, when they are missing.
//!
//! Debian packages (FFmpeg 5.1, rtmpdump, GStreamer 1.22) come from apt; the static FFmpeg 9 build (rtmpe,
//! rtmpte, Enhanced RTMP) comes from the PyPI wheel `imageio-ffmpeg`, pinned, unpacked into `.cache/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

const APT_PACKAGES: &[&str] = &[
    "ffmpeg",
    "rtmpdump",
    "gstreamer1.0-tools",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
];
const FFMPEG9_WHEEL: &str = "imageio-ffmpeg==0.8.1";
/// A peer server for our client commands (and the benchmark's reference).
const NGINX_RTMP_PACKAGES: &[&str] = &["nginx", "libnginx-mod-rtmp"];
/// A real Prometheus scraping `/metrics` (tests/tests/api.rs), and its `promtool`.
const PROMETHEUS_PACKAGES: &[&str] = &["prometheus"];
/// Headless Chromium for the browser tests (tests/src/browser.rs), driven by puppeteer-core from npm.
const BROWSER_PACKAGES: &[&str] = &["chromium"];
const NGINX_RTMP_MODULES: &[&str] = &[
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/share/nginx/modules/ngx_rtmp_module.so",
];

/// Makes sure every tool exists; returns the environment the interop tests need to find them.
pub fn ensure_interop_tools() -> Result<Vec<(String, String)>, String> {
    if debian_tools_present() {
        println!("  ffmpeg, ffprobe, rtmpdump, gst-launch-1.0 (rtmp2sink, rtmpsink): present");
    } else {
        install_apt_packages(APT_PACKAGES)?;
        if !debian_tools_present() {
            return Err(
                "apt-get finished but ffmpeg/rtmpdump/GStreamer rtmp elements are still missing"
                    .into(),
            );
        }
    }
    if !nginx_rtmp_present() {
        install_apt_packages(NGINX_RTMP_PACKAGES)?;
        if !nginx_rtmp_present() {
            return Err("apt-get finished but nginx or ngx_rtmp_module.so is still missing".into());
        }
    }
    println!("  nginx with the RTMP module: present");
    ensure_packages(PROMETHEUS_PACKAGES, &["prometheus", "promtool"])?;
    println!("  prometheus, promtool: present");
    ensure_browser()?;
    let ffmpeg9 = ensure_ffmpeg9()?;
    println!("  FFmpeg 9 (imageio-ffmpeg): {}", ffmpeg9.display());
    Ok(vec![(
        "RTMPX_FFMPEG9".into(),
        ffmpeg9.display().to_string(),
    )])
}

pub fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn gst_element_present(element: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .arg(element)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn debian_tools_present() -> bool {
    ["ffmpeg", "ffprobe", "rtmpdump", "gst-launch-1.0"]
        .iter()
        .all(|c| has_command(c))
        && ["rtmp2sink", "rtmp2src", "rtmpsink", "flvmux", "flvdemux"]
            .iter()
            .all(|e| gst_element_present(e))
}

pub fn nginx_rtmp_present() -> bool {
    has_command("nginx") && nginx_rtmp_module().is_some()
}

/// Where Debian put the RTMP module of nginx.
pub fn nginx_rtmp_module() -> Option<&'static str> {
    NGINX_RTMP_MODULES
        .iter()
        .copied()
        .find(|m| std::path::Path::new(m).exists())
}

/// Installs `packages` unless every command in `commands` is already there.
pub fn ensure_packages(packages: &[&str], commands: &[&str]) -> Result<(), String> {
    if commands.iter().all(|c| has_command(c)) {
        return Ok(());
    }
    install_apt_packages(packages)
}

fn install_apt_packages(packages: &[&str]) -> Result<(), String> {
    println!("  installing Debian packages: {}", packages.join(" "));
    if !has_command("apt-get") {
        return Err(format!(
            "missing tools and no apt-get here; install: {}",
            packages.join(" ")
        ));
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut argv: Vec<&str> = sudo.to_vec();
        argv.push("apt-get");
        argv.extend_from_slice(args);
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed ({status}); install these packages by hand: {}",
                argv.join(" "),
                packages.join(" ")
            ))
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Debian's Chromium and the browser harness's npm packages (`tests/browser`, pinned by its
/// package-lock.json), installed with `npm ci` when missing.
fn ensure_browser() -> Result<(), String> {
    ensure_packages(BROWSER_PACKAGES, &["chromium"])?;
    let harness = crate::workspace_root().join("tests").join("browser");
    if harness
        .join("node_modules/puppeteer-core/package.json")
        .exists()
    {
        println!("  chromium, puppeteer-core (tests/browser): present");
        return Ok(());
    }
    if !has_command("npm") {
        return Err("npm is missing: the browser tests need Node.js and npm".into());
    }
    println!("  installing tests/browser's npm packages (npm ci)");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&harness)
        .env("PUPPETEER_SKIP_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !status.success() {
        return Err(format!("npm ci in tests/browser failed ({status})"));
    }
    Ok(())
}

/// The static FFmpeg 9 binary shipped inside the imageio-ffmpeg wheel, installed into `.cache/` once.
fn ensure_ffmpeg9() -> Result<PathBuf, String> {
    let target = crate::workspace_root()
        .join(".cache")
        .join("imageio-ffmpeg");
    if let Some(found) = find_ffmpeg9(&target) {
        return Ok(found);
    }
    println!("  installing {FFMPEG9_WHEEL} into {}", target.display());
    let python = if has_command("python3") {
        "python3"
    } else {
        "python"
    };
    let status = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&target)
        .arg(FFMPEG9_WHEEL)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {python} -m pip: {e}"))?;
    if !status.success() {
        return Err(format!("pip install {FFMPEG9_WHEEL} failed ({status})"));
    }
    find_ffmpeg9(&target)
        .ok_or_else(|| format!("{FFMPEG9_WHEEL} installed but no ffmpeg binary found in it"))
}

fn find_ffmpeg9(target: &std::path::Path) -> Option<PathBuf> {
    let binaries = target.join("imageio_ffmpeg").join("binaries");
    let entry = std::fs::read_dir(binaries)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("ffmpeg") && !name.ends_with(".py") && !name.starts_with("__")
        })?;
    let path = entry.path();
    let _ = Command::new("chmod").arg("+x").arg(&path).status();
    Some(path)
}
