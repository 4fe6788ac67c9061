//! Properties of the compiled eBPF object itself (no kernel needed).

use std::collections::BTreeSet;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget};
use steerer_user::dataplane::EBPF_OBJECT;

/// compiler-builtins' `mem*` functions, which the BPF target compiles to
/// loops over single bytes. LLVM emits calls to them for struct copies and
/// zeroing it does not expand itself; on the established-flow path two such
/// calls (the MAC rewrite) once cost about a third of the packet's time
/// (BENCHMARKS.md).
const BYTE_LOOPS: [&str; 5] = ["memcpy", "memmove", "memset", "memcmp", "bcmp"];

#[test]
fn programs_call_no_byte_loop_builtins() {
    let file = object::File::parse(EBPF_OBJECT).expect("parse the eBPF object");
    let mut programs = 0;
    let mut calls = BTreeSet::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("?").to_string();
        if !["xdp", "classifier"].contains(&name.as_str()) {
            continue;
        }
        programs += 1;
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(index) = reloc.target() else {
                continue;
            };
            let symbol = file.symbol_by_index(index).expect("relocation symbol");
            let target = symbol.name().unwrap_or("?");
            if BYTE_LOOPS.contains(&target) {
                calls.insert(format!("{name}+{offset:#x} -> {target}"));
            }
        }
    }
    assert_eq!(programs, 2, "expected the xdp and classifier sections");
    assert!(
        calls.is_empty(),
        "eBPF programs call byte-loop builtins (copy/zero fields one by one instead): {calls:?}"
    );
}

/// The production object holds steerer's programs and maps only: the
/// benchmark's reference programs come with `--features bench`, and the
/// hop-name map is there for the pins.
#[test]
fn the_production_object_has_no_benchmark_programs() {
    let file = object::File::parse(EBPF_OBJECT).expect("parse the eBPF object");
    let programs: BTreeSet<String> = file
        .symbols()
        .filter(|s| {
            s.section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .is_some_and(|sec| ["xdp", "classifier"].contains(&sec.name().unwrap_or("")))
        })
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| !n.is_empty() && !n.starts_with('.') && !n.starts_with("LBB"))
        .collect();
    let want: BTreeSet<String> = ["steerer_xdp", "steerer_tc", "steerer_tc_reply"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if cfg!(feature = "bench") {
        assert!(programs.contains("bench_xdp_pass") && programs.contains("bench_parse_lookup"));
    } else {
        assert_eq!(programs, want, "programs of the production object");
    }
    let maps: BTreeSet<&str> = file.symbols().filter_map(|s| s.name().ok()).collect();
    assert!(
        maps.contains("HOP_NAMES"),
        "the hop-name map is in the object"
    );
}
