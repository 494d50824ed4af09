//! The daemon's resident code: asks the kernel (`madvise(MADV_RANDOM)` on the
//! binary's read-only mappings) to map only the code pages the daemon runs, not the
//! 16 pages around each one (the kernel's fault-around). The binary also holds the
//! CLI, the `attach` TUI and the ACP bridge, which `serve` never runs; with
//! fault-around their pages become resident beside the code that is run.
//!
//! This changes what `VmRSS` counts, not what the daemon allocates: the pages are
//! the binary's, shared with the page cache, and any page the daemon runs later is
//! mapped when it is first run (a minor fault, no disk read once it is cached).
//! docs/benchmarks.md reports the daemon's RSS with and without it;
//! `SESSIOND_FAULT_AROUND=1` turns it off.

/// Advises the read-only mappings of this binary (code, constants, unwind tables);
/// returns how many bytes they cover (0 when it was not done: turned off, or the
/// mappings were not found).
pub fn advise_random() -> usize {
    if std::env::var_os("SESSIOND_FAULT_AROUND").is_some_and(|v| v == "1") {
        return 0;
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let here = advise_random as fn() -> usize as usize;
    let Some(file) = maps.lines().find_map(|l| {
        let m = Mapping::parse(l)?;
        (m.start <= here && here < m.end).then_some(m.file)
    }) else {
        return 0;
    };
    let mut advised = 0;
    for m in maps.lines().filter_map(Mapping::parse) {
        if m.file != file || m.writable {
            continue;
        }
        // SAFETY: an advice that changes no memory contents, on a mapping of this
        // process listed in /proc/self/maps.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_RANDOM,
            )
        };
        if rc == 0 {
            advised += m.end - m.start;
        }
    }
    advised
}

/// One line of `/proc/self/maps`.
#[derive(Debug, PartialEq)]
struct Mapping<'a> {
    start: usize,
    end: usize,
    writable: bool,
    file: &'a str,
}

impl<'a> Mapping<'a> {
    fn parse(line: &'a str) -> Option<Mapping<'a>> {
        let mut fields = line.split_whitespace();
        let (a, b) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let file = fields.nth(3)?;
        Some(Mapping {
            start: usize::from_str_radix(a, 16).ok()?,
            end: usize::from_str_radix(b, 16).ok()?,
            writable: perms.contains('w'),
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_parsed_and_the_binary_is_advised() {
        let line = "55b21347c000-55b213933000 r-xp 00000000 fd:00 123 /usr/bin/sessiond";
        assert_eq!(
            Mapping::parse(line),
            Some(Mapping {
                start: 0x55b21347c000,
                end: 0x55b213933000,
                writable: false,
                file: "/usr/bin/sessiond"
            })
        );
        let anon = "7ff90e7e4000-7ff90e7e6000 rw-p 00000000 00:00 0";
        assert_eq!(Mapping::parse(anon), None);
        assert!(advise_random() > 0);
    }
}
