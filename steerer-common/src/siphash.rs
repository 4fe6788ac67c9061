//! SipHash-2-4 over a fixed 40-byte [`FlowKey`](crate::FlowKey).
//!
//! The flow-to-slot hash must be keyed (SPEC 4.1.3, 5.6): a hop that could
//! predict the hash could craft source ports that all land on its slots.
//! SipHash is the standard keyed PRF for this. The input length is fixed, so
//! the message loop is a fixed five rounds the verifier sees as straight code.

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of five little-endian words (a 40-byte message).
#[inline(always)]
pub fn siphash_words(key: &[u64; 2], words: &[u64; 5]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut i = 0;
    while i < 5 {
        let m = words[i];
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
        i += 1;
    }
    // Final block: only the length byte (40), no tail bytes.
    let b: u64 = 40u64 << 56;
    v[3] ^= b;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Keyed hash of a flow key; both the kernel and the tests use this.
#[inline(always)]
pub fn flow_hash(key: &[u64; 2], flow: &crate::FlowKey) -> u64 {
    siphash_words(key, &flow.words())
}

/// The hash of `flow` for its `salt`-th choice: salt 0 is [`flow_hash`];
/// a failover asks again with salt 1, 2, ... (the key's top 16 bits are
/// padding, so the salt cannot collide with a real tuple).
#[inline(always)]
pub fn flow_hash_salted(key: &[u64; 2], flow: &crate::FlowKey, salt: u16) -> u64 {
    let mut w = flow.words();
    w[4] ^= (salt as u64) << 48;
    siphash_words(key, &w)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::FlowKey;
    use core::hash::Hasher;

    fn key_bytes(k: &FlowKey) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..16].copy_from_slice(&k.src_addr);
        out[16..32].copy_from_slice(&k.dst_addr);
        out[32..34].copy_from_slice(&k.src_port.to_le_bytes());
        out[34..36].copy_from_slice(&k.dst_port.to_le_bytes());
        out[36] = k.proto;
        out[37] = k.family;
        out
    }

    #[test]
    fn matches_reference_siphash_2_4() {
        let key = [0x0706050403020100u64, 0x0f0e0d0c0b0a0908u64];
        for seed in 0u16..200 {
            let mut k = FlowKey {
                src_port: seed.wrapping_mul(7919),
                dst_port: 443,
                proto: 6,
                family: 4,
                ..Default::default()
            };
            k.src_addr[..4].copy_from_slice(&[198, 18, 0, (seed % 250) as u8]);
            k.dst_addr[..4].copy_from_slice(&[198, 19, 0, 2]);
            let mut reference = siphasher::sip::SipHasher24::new_with_keys(key[0], key[1]);
            reference.write(&key_bytes(&k));
            assert_eq!(flow_hash(&key, &k), reference.finish(), "seed {seed}");
        }
    }

    #[test]
    fn different_keys_give_different_hashes() {
        let k = FlowKey {
            src_port: 40000,
            dst_port: 80,
            proto: 6,
            family: 4,
            ..Default::default()
        };
        assert_ne!(flow_hash(&[1, 2], &k), flow_hash(&[3, 4], &k));
    }

    #[test]
    fn layout_sizes_are_what_the_kernel_expects() {
        assert_eq!(core::mem::size_of::<FlowKey>(), FlowKey::SIZE);
        assert_eq!(
            core::mem::size_of::<crate::FlowValue>(),
            crate::FlowValue::SIZE
        );
        assert_eq!(core::mem::size_of::<crate::HopEntry>(), 24);
        assert_eq!(core::mem::size_of::<crate::DataplaneConfig>(), 24);
    }
}
