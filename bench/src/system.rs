//! Linux process plumbing: CPU pinning, child process groups, and reading
//! CPU time and resident memory from `/proc`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Pins the calling thread, and every thread or process it creates later, to `core`.
pub fn pin_current_process(core: usize) -> io::Result<()> {
    set_affinity(core)
}

fn set_affinity(core: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data and all-zero is a valid empty set;
    // `sched_setaffinity` only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard limit, because 512 client
/// connections plus the fake Graph API's server sockets can pass a soft limit of 1024.
pub fn raise_open_file_limit() {
    // SAFETY: `rlimit` is plain data, filled by `getrlimit` before use.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Starts `command` as the leader of a new process group, pinned to `core`
/// when one is given, so that a shell command and everything it starts can be
/// measured and stopped together.
pub fn spawn_group(command: &mut Command, core: Option<usize>) -> io::Result<Child> {
    command.process_group(0);
    if let Some(core) = core {
        // SAFETY: the closure runs between fork and exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(move || set_affinity(core));
        }
    }
    command.spawn()
}

/// Sends SIGTERM to the child's process group, waits up to 15 seconds (the
/// service lets requests finish for up to 10), then sends SIGKILL.
pub fn stop_group(child: &mut Child) {
    let group = child.id() as libc::pid_t;
    // SAFETY: plain system call on a process group this program created.
    unsafe {
        libc::kill(-group, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("process group {group} did not stop after SIGTERM; sending SIGKILL");
    // SAFETY: as above.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Returns the ids of the processes whose process group is `group`.
fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|fields| fields.process_group == group))
        .collect()
}

struct StatFields {
    process_group: u32,
    cpu_ticks: u64,
}

/// Reads the process group and user plus system CPU time from `/proc/PID/stat`
/// (fields 5, 14 and 15 in proc(5)).
fn stat_fields(pid: u32) -> Option<StatFields> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses, so fields are counted after its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let process_group = fields.get(2)?.parse().ok()?;
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(StatFields {
        process_group,
        cpu_ticks: user + system,
    })
}

/// Returns the CPU time used so far by every process in `group`.
pub fn group_cpu_time(group: u32) -> Duration {
    // SAFETY: `sysconf` has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks: u64 = group_members(group)
        .into_iter()
        .filter_map(stat_fields)
        .map(|fields| fields.cpu_ticks)
        .sum();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

/// Returns the resident set size, in bytes, summed over every process in `group`.
pub fn group_rss_bytes(group: u32) -> u64 {
    group_members(group)
        .into_iter()
        .filter_map(|pid| status_kib(pid, "VmRSS:"))
        .sum::<u64>()
        * 1024
}

/// Reads one `kB` line, such as `VmRSS:`, from `/proc/PID/status`.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
