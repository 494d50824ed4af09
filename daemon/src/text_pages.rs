//! The daemon's resident code: asks the kernel (`madvise(MADV_RANDOM)` on the
//! binary's executable mapping) to map only the code pages the daemon runs, not the
//! 16 pages around each one (the kernel's fault-around). The binary also holds the
//! CLI, the `attach` TUI and the ACP bridge, which `serve` never runs; with
//! fault-around their pages become resident beside the code that is run.
//!
//! This changes what `VmRSS` counts, not what the daemon allocates: the pages are
//! the binary's, shared with the page cache, and any page the daemon runs later is
//! mapped when it is first run (a minor fault, no disk read once it is cached).
//! docs/benchmarks.md reports the daemon's RSS with and without it;
//! `SESSIOND_FAULT_AROUND=1` turns it off.

/// Advises the executable mapping of this binary; returns how many bytes it covers
/// (0 when it was not done: turned off, or the mapping was not found).
pub fn advise_random() -> usize {
    if std::env::var_os("SESSIOND_FAULT_AROUND").is_some_and(|v| v == "1") {
        return 0;
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let here = advise_random as fn() -> usize as usize;
    let Some((start, end)) = maps.lines().find_map(|line| code_range(line, here)) else {
        return 0;
    };
    // SAFETY: madvise with an advice that changes no memory contents, on a mapping
    // of this process found in /proc/self/maps.
    let rc = unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end - start,
            libc::MADV_RANDOM,
        )
    };
    if rc == 0 {
        end - start
    } else {
        0
    }
}

/// The range of a `/proc/self/maps` line when it is an executable mapping that
/// holds `addr`.
fn code_range(line: &str, addr: usize) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    if !perms.contains('x') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    (start <= addr && addr < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_mapping_holding_an_address_is_found() {
        let line = "55b21347c000-55b213933000 r-xp 00000000 fd:00 123 /usr/bin/sessiond";
        assert_eq!(
            code_range(line, 0x55b21347c010),
            Some((0x55b21347c000, 0x55b213933000))
        );
        assert_eq!(code_range(line, 0x55b213933000), None);
        let data = "55b21347c000-55b213933000 r--p 00000000 fd:00 123 /usr/bin/sessiond";
        assert_eq!(code_range(data, 0x55b21347c010), None);
        assert!(advise_random() > 0);
    }
}
