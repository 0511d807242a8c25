//! `mpnn`: the command-line front end. See `mpnn --help`.

mod cli;

use clap::Parser;

fn main() {
    keep_freed_memory();
    quiet_gpu_probe();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MPNN_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = cli::args::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

/// `--device auto` (the default) looks for a GPU through the Vulkan loader. On Linux machines
/// with Mesa installed the loader also runs Mesa's implicit device-selection layer, which asks
/// the Wayland and X servers for a default GPU and, with no `XDG_RUNTIME_DIR` (Slurm jobs,
/// containers, cron), prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.`
/// twice on a run that did nothing wrong. mpnn ranks the adapters itself (`gpu::Gpu::open`), so
/// that layer is switched off through its own documented switch, `NODEVICE_SELECT=1`, unless the
/// user set it. Done first, while this is the only thread (setting the environment is not
/// thread-safe).
fn quiet_gpu_probe() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: no other thread exists yet (first statements of `main`).
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// glibc's malloc hands freed blocks above 128 KiB back to the kernel (they are mmapped, or
/// trimmed off the heap), so every large buffer the model allocates (per layer, per residue
/// group) is page-faulted in and zeroed again: about 30% of the page faults of a LigandMPNN
/// score of 7v11. Serving blocks up to 32 MiB from the heap and keeping freed heap memory lets
/// them be reused by the next layer and the next structure; the resident size stays at the
/// job's peak instead of shrinking between structures.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only changes allocator settings; called before any other thread exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
