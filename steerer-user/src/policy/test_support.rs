//! Pieces the controller's unit tests share: a hop as the controller is
//! told about it and a flow key of the test addresses (198.18.0.2 ->
//! 198.19.0.x).

use steerer_common::FlowKey;

use super::{Admin, ControllerHop, HopSpec};
use crate::portsets::PortSet;

/// Hop `name` claiming `estimate` bytes/s, every port, up and active,
/// holding `id` (the pins' word) if given.
pub fn hop(name: &str, id: Option<u32>, estimate: f64) -> ControllerHop {
    ControllerHop {
        spec: HopSpec {
            name: name.into(),
            initial_estimate: estimate,
            operator: None,
            subnet: None,
            fresh: false,
            latency_ms: None,
        },
        id,
        accepts: PortSet::all(),
        usable: true,
        admin: Admin::Active,
    }
}

/// 198.18.0.2:`sport` -> 198.19.0.`dst`:`dport`, protocol `proto`.
pub fn flow_key(proto: u8, dst: u8, dport: u16, sport: u16) -> FlowKey {
    let mut k = FlowKey {
        src_port: sport,
        dst_port: dport,
        proto,
        family: 4,
        ..FlowKey::default()
    };
    k.src_addr[..4].copy_from_slice(&[198, 18, 0, 2]);
    k.dst_addr[..4].copy_from_slice(&[198, 19, 0, dst]);
    k
}
