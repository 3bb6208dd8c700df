//! How the `looplight` binary is linked in release builds: what a process maps at start.
//!
//! A file-backed page counts in a process's RSS once it is mapped, and on a page fault Linux
//! maps up to 64 KiB of cached pages around the faulting one. Laid out by the linker in its
//! default order, the code that runs at start-up is spread over most of the binary's 5.6 MB
//! of text, and most of it ends up resident. Two linker options change that:
//!
//! - `--symbol-ordering-file=src/link-order.txt`: the functions that run at start-up first,
//!   then those that serve requests, hottest first (`benches/load/link_order.py` writes the
//!   list from callgrind). Start-up maps a fifth of the text instead of 70%, and the
//!   request path's code lies together. Names the binary does not have are skipped, so a
//!   stale list costs only the layout. lld, the linker Rust uses on x86_64 Linux, has the
//!   option; GNU ld has not.
//! - `-z pack-relative-relocs` (DT_RELR, glibc 2.36): the 12,600 relative relocations of a
//!   position-independent binary take 3.4 KiB instead of 300 KiB, which ld.so reads at every
//!   start.
//!
//! Each option is given only when a probe shows that it works here: an empty program linked
//! with it, as cargo links ours (the same rustc, target, flags and linker), and, where it
//! runs on this machine, started. Another linker or an older glibc gets the plain layout,
//! never a failed build. Debug builds keep the plain layout: their symbols differ anyway.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

const ORDER_FILE: &str = "src/link-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let order_file = manifest_dir.join(ORDER_FILE);
    let layouts: [&[String]; 2] = [
        &[
            format!("-Wl,--symbol-ordering-file={}", order_file.display()),
            "-Wl,--no-warn-symbol-ordering".to_owned(),
        ],
        &["-Wl,-z,pack-relative-relocs".to_owned()],
    ];
    for (index, link_args) in layouts.into_iter().enumerate() {
        if links_and_runs(index, link_args) {
            for arg in link_args {
                println!("cargo:rustc-link-arg-bins={arg}");
            }
        } else {
            println!(
                "cargo:warning=the linker does not take {}: linking without it",
                link_args[0]
            );
        }
    }
}

/// Whether an empty program links with `link_args` as cargo will link the binary, and, when
/// it is built for this machine, starts.
fn links_and_runs(index: usize, link_args: &[String]) -> bool {
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let source = out_dir.join("probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let program = out_dir.join(format!("probe-{index}"));
    let mut rustc = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    rustc
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .args(["--crate-type", "bin"]);
    if let Ok(target) = env::var("TARGET") {
        rustc.args(["--target", &target]);
    }
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        rustc.args(flags.split('\x1f').filter(|flag| !flag.is_empty()));
    }
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        let mut arg = OsString::from("linker=");
        arg.push(linker);
        rustc.arg("-C").arg(arg);
    }
    for arg in link_args {
        rustc.arg("-C").arg(format!("link-arg={arg}"));
    }
    let linked = rustc.output().is_ok_and(|output| output.status.success());
    let runs_here = env::var("HOST").ok() == env::var("TARGET").ok();
    linked && (!runs_here || Command::new(&program).status().is_ok_and(|s| s.success()))
}
