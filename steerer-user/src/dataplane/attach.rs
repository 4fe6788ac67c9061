//! Attaching through bpf links pinned next to the maps: they keep the
//! programs attached when the daemon dies, and a restart swaps its
//! programs into them atomically.

use std::path::Path;

use aya::programs::{
    links::{FdLink, PinnedLink},
    tc::{SchedClassifierLink, TcAttachType},
    xdp::XdpLink,
    SchedClassifier, Xdp, XdpMode,
};

use super::*;

impl Dataplane {
    /// Attach the steering program to `iface` ingress (XDP, or TC with
    /// `AttachMode::Tc`) and the reply accountant to its TC egress (TCX),
    /// through bpf links pinned next to the maps. Links pinned by an earlier
    /// run are reused: the new programs replace the old ones atomically. A
    /// stale pin (its interface gone) is replaced by a new attachment, and
    /// the other steering variant's pin, if a run used it, is removed.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<Attachment, DataplaneError> {
        let xdp_pin = self.pin_dir.join(XDP_LINK_PIN);
        let steer_tc_pin = self.pin_dir.join(TC_STEER_LINK_PIN);
        let steering_replaced = match mode {
            AttachMode::Xdp | AttachMode::XdpSkb => {
                let replaced = self.attach_xdp(iface, mode, &xdp_pin)?;
                remove_link_pin(&steer_tc_pin)?;
                replaced
            }
            AttachMode::Tc => {
                let replaced = self.attach_tc(
                    TC_STEER_PROGRAM,
                    iface,
                    TcAttachType::Ingress,
                    &steer_tc_pin,
                )?;
                remove_link_pin(&xdp_pin)?;
                replaced
            }
        };
        let tc_pin = self.pin_dir.join(TC_LINK_PIN);
        let reply_replaced = self.attach_tc(TC_PROGRAM, iface, TcAttachType::Egress, &tc_pin)?;
        Ok(if steering_replaced && reply_replaced {
            Attachment::Replaced
        } else {
            Attachment::New
        })
    }

    /// Attach (or take over the pinned link of) the XDP program; `true`
    /// when a pinned link was taken over.
    fn attach_xdp(
        &mut self,
        iface: &str,
        mode: AttachMode,
        pin: &Path,
    ) -> Result<bool, DataplaneError> {
        let xdp: &mut Xdp = program_mut(&mut self.ebpf, XDP_PROGRAM)?;
        let taken = take_over_pinned_link(pin, "XDP", |fd| {
            let link = XdpLink::try_from(fd).map_err(|e| e.to_string())?;
            xdp.attach_to_link(link)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        if taken {
            return Ok(true);
        }
        let xdp_mode = match mode {
            AttachMode::XdpSkb => XdpMode::Skb,
            _ => XdpMode::Driver,
        };
        let id = xdp.attach(iface, xdp_mode).map_err(prog_err(XDP_PROGRAM))?;
        let link = xdp.take_link(id).map_err(prog_err(XDP_PROGRAM))?;
        pin_link(
            pin,
            FdLink::try_from(link).map_err(|e| format!("not a bpf link (kernel too old?): {e}")),
        )?;
        Ok(false)
    }

    /// As `attach_xdp`, for a TC program at `attach_type` (TCX links).
    fn attach_tc(
        &mut self,
        name: &'static str,
        iface: &str,
        attach_type: TcAttachType,
        pin: &Path,
    ) -> Result<bool, DataplaneError> {
        let tc: &mut SchedClassifier = program_mut(&mut self.ebpf, name)?;
        let taken = take_over_pinned_link(pin, "TC", |fd| {
            let link = SchedClassifierLink::try_from(fd).map_err(|e| e.to_string())?;
            tc.attach_to_link(link).map(drop).map_err(|e| e.to_string())
        })?;
        if taken {
            return Ok(true);
        }
        let id = tc.attach(iface, attach_type).map_err(prog_err(name))?;
        let link = tc.take_link(id).map_err(prog_err(name))?;
        pin_link(
            pin,
            FdLink::try_from(link)
                .map_err(|e| format!("not a TCX link (kernel older than 6.6?): {e}")),
        )?;
        Ok(false)
    }
}

/// Take over the link an earlier run pinned at `pin` (`take_over` swaps
/// this run's program into it); `true` when that worked. A stale pin (its
/// interface gone, or not such a link) is removed and `false` returned.
fn take_over_pinned_link(
    pin: &Path,
    what: &str,
    take_over: impl FnOnce(FdLink) -> Result<(), String>,
) -> Result<bool, DataplaneError> {
    if !pin.exists() {
        return Ok(false);
    }
    let result = PinnedLink::from_pin(pin)
        .map_err(|e| e.to_string())
        .and_then(|p| take_over(FdLink::from(p)));
    match result {
        Ok(()) => Ok(true),
        Err(e) => {
            tracing::warn!(pin = %pin.display(), error = %e, "stale {what} link pin; attaching anew");
            remove_link_pin(pin)?;
            Ok(false)
        }
    }
}

/// Pin a freshly attached link next to the maps.
fn pin_link(pin: &Path, link: Result<FdLink, String>) -> Result<(), DataplaneError> {
    link.map_err(link_err(pin))?
        .pin(pin)
        .map_err(|e| e.to_string())
        .map_err(link_err(pin))?;
    Ok(())
}

/// Unpin one link (detaching its program once nothing else holds it).
fn remove_link_pin(pin: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataplaneError::Io {
            context: format!("removing {}", pin.display()),
            source,
        }),
    }
}
