//! Reading a whole hash map in a few syscalls (issue 15): the kernel's
//! `BPF_MAP_LOOKUP_BATCH` (5.6+) copies up to `count` entries per call,
//! where walking the map with `get_next_key` + `lookup` costs two syscalls
//! per entry. aya 0.14 has no batch call, so this is the one small wrapper
//! over bpf(2), kept to this file.

use std::os::fd::{AsRawFd as _, BorrowedFd};

/// `BPF_MAP_LOOKUP_BATCH` (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Entries asked for per call: 4,096 flow entries are about 400 KiB of
/// buffers, and a million-entry table takes some 250 calls.
pub const BATCH_ENTRIES: u32 = 4096;

/// The `batch` member of `union bpf_attr` (the commands `BPF_MAP_*_BATCH`).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// One bpf(2) batch command; the kernel updates `attr.count`.
///
/// # Safety
/// Every pointer in `attr` must point at memory of the sizes the command
/// and the map ask for (`count` keys, values, a token), alive for the call.
unsafe fn batch_call(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    // SAFETY: the caller vouches for the pointers; `attr` itself is a
    // valid `bpf_attr` prefix of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Every entry of the hash map behind `fd` (LRU or not) whose keys are `K`
/// and values `V` (the map's own key and value sizes: the caller's types
/// are the map's `#[repr(C)]` shapes). Entries that change while it reads
/// are read as they are at that moment; none is read twice. An error of
/// the syscall is returned as is (the caller may fall back to walking the
/// map, e.g. on a kernel without batch calls, `EINVAL`).
pub fn lookup_all<K: Copy + Default, V: Copy + Default>(
    fd: BorrowedFd<'_>,
) -> std::io::Result<Vec<(K, V)>> {
    let mut out = Vec::new();
    let mut chunk = BATCH_ENTRIES as usize;
    let mut keys = vec![K::default(); chunk];
    let mut values = vec![V::default(); chunk];
    // The position tokens: opaque to user space (a bucket index for hash
    // maps); eight bytes leave room for any.
    let mut in_token = 0u64;
    let mut out_token = 0u64;
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &in_token as *const u64 as u64
            },
            out_batch: &mut out_token as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at buffers of `chunk` keys and values of the
        // map's sizes and at the two tokens, all alive for the call; the
        // kernel writes at most `count` entries and one token.
        let err = unsafe { batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr) }.err();
        let got = (attr.count as usize).min(chunk);
        if let Some(e) = &err {
            if e.raw_os_error() == Some(libc::ENOSPC) && got == 0 {
                // One bucket holds more entries than `chunk`: ask for more.
                chunk *= 2;
                keys.resize(chunk, K::default());
                values.resize(chunk, V::default());
                continue;
            }
        }
        out.extend(
            keys[..got]
                .iter()
                .copied()
                .zip(values[..got].iter().copied()),
        );
        match err {
            None => {
                in_token = out_token;
                first = false;
            }
            // The last batch: everything was read.
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Some(e) => return Err(e),
        }
    }
}

/// `BPF_MAP_DELETE_BATCH`.
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// Delete `keys` from the hash map behind `fd` in batches; a key that is
/// not there (evicted, ended meanwhile) is skipped. Returns how many were
/// deleted.
pub fn delete_keys<K: Copy>(fd: BorrowedFd<'_>, keys: &[K]) -> std::io::Result<usize> {
    let mut deleted = 0;
    let mut rest = keys;
    while !rest.is_empty() {
        let n = rest.len().min(BATCH_ENTRIES as usize);
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: n as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `keys` points at `n` keys of the map's size, alive for
        // the call; the kernel only reads them.
        let result = unsafe { batch_call(BPF_MAP_DELETE_BATCH, &mut attr) };
        // The kernel stops at the first key it cannot delete; `count`
        // says how many before it went.
        let done = (attr.count as usize).min(n);
        deleted += done;
        if let Err(e) = result {
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            // Skip the missing key.
            rest = &rest[done + 1..];
        } else {
            rest = &rest[n..];
        }
    }
    Ok(deleted)
}

/// `BPF_MAP_UPDATE_BATCH`.
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Write `entries` into the hash map behind `fd` in batches (insert or
/// overwrite). Returns how many were written.
pub fn update_all<K: Copy, V: Copy>(
    fd: BorrowedFd<'_>,
    entries: &[(K, V)],
) -> std::io::Result<usize> {
    let mut written = 0;
    for part in entries.chunks(BATCH_ENTRIES as usize) {
        let keys: Vec<K> = part.iter().map(|(k, _)| *k).collect();
        let values: Vec<V> = part.iter().map(|(_, v)| *v).collect();
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: part.len() as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `keys` and `values` hold `count` entries of the map's
        // sizes, alive for the call; the kernel only reads them.
        let result = unsafe { batch_call(BPF_MAP_UPDATE_BATCH, &mut attr) };
        written += (attr.count as usize).min(part.len());
        result?;
    }
    Ok(written)
}
