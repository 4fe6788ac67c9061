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
