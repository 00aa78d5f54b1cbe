//! Allocator statistics, named as PyTorch's `torch.cuda.memory_stats()` names them.

/// One statistic: its current value, its peak since the last reset, and the running
/// totals of increases (`allocated`) and decreases (`freed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// The value now.
    pub current: u64,
    /// The highest value since the allocator was created or the peaks were reset.
    pub peak: u64,
    /// Sum of all increases.
    pub allocated: u64,
    /// Sum of all decreases.
    pub freed: u64,
}

impl Stat {
    pub(crate) fn increase(&mut self, amount: u64) {
        self.current += amount;
        self.allocated += amount;
        self.peak = self.peak.max(self.current);
    }

    pub(crate) fn decrease(&mut self, amount: u64) {
        debug_assert!(self.current >= amount, "statistic would go negative");
        self.current = self.current.saturating_sub(amount);
        self.freed += amount;
    }

    fn reset_peak(&mut self) {
        self.peak = self.current;
    }
}

/// A snapshot of a device allocator's statistics (PyTorch's `memory_stats`, "all" pool).
///
/// * `allocated_bytes` / `allocation`: memory handed out to tensors (rounded sizes).
/// * `reserved_bytes` / `segment`: memory obtained from the driver (`cuMemAlloc`).
/// * `active_bytes` / `active`: allocated blocks plus freed blocks still waiting for
///   events of other streams before they can be reused.
/// * `inactive_split_bytes` / `inactive_split`: free blocks that are pieces of a split
///   segment (fragmentation).
/// * `requested_bytes`: the sizes callers asked for, before rounding.
/// * `bytes_host_to_device` … `num_device_to_host`: the copies between host and
///   device memory (counted by the device, not the allocator; since the device was
///   opened or since `reset_peak_memory_stats`), the cost a training loop should
///   keep to its input batches and the scalars it reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes held by live allocations (rounded to 512).
    pub allocated_bytes: Stat,
    /// Bytes obtained from the driver.
    pub reserved_bytes: Stat,
    /// Bytes of active blocks (allocated, or freed but awaiting stream events).
    pub active_bytes: Stat,
    /// Bytes of free blocks that are parts of split segments.
    pub inactive_split_bytes: Stat,
    /// Bytes requested by callers (not rounded).
    pub requested_bytes: Stat,
    /// Number of live allocations.
    pub allocation: Stat,
    /// Number of segments obtained from the driver.
    pub segment: Stat,
    /// Number of active blocks.
    pub active: Stat,
    /// Number of free blocks that are parts of split segments.
    pub inactive_split: Stat,
    /// Failed driver allocations that led to freeing the cache and retrying.
    pub num_alloc_retries: u64,
    /// Allocations that failed even after the retry (out-of-memory errors).
    pub num_ooms: u64,
    /// Calls to the raw allocator (`cuMemAlloc`).
    pub num_device_alloc: u64,
    /// Calls to the raw free (`cuMemFree`).
    pub num_device_free: u64,
    /// Bytes copied from host to device memory.
    pub bytes_host_to_device: u64,
    /// Bytes copied from device to host memory.
    pub bytes_device_to_host: u64,
    /// Copies from host to device memory.
    pub num_host_to_device: u64,
    /// Copies from device to host memory.
    pub num_device_to_host: u64,
}

impl MemoryStats {
    /// Sets every peak to its current value (PyTorch's `reset_peak_memory_stats`).
    pub fn reset_peaks(&mut self) {
        for stat in self.stats_mut() {
            stat.reset_peak();
        }
    }

    fn stats_mut(&mut self) -> [&mut Stat; 9] {
        [
            &mut self.allocated_bytes,
            &mut self.reserved_bytes,
            &mut self.active_bytes,
            &mut self.inactive_split_bytes,
            &mut self.requested_bytes,
            &mut self.allocation,
            &mut self.segment,
            &mut self.active,
            &mut self.inactive_split,
        ]
    }

    /// The statistics as PyTorch's flat key/value list, e.g.
    /// `("allocated_bytes.all.current", 1024)`, `("num_alloc_retries", 0)`.
    pub fn to_pairs(&self) -> Vec<(String, u64)> {
        let named: [(&str, &Stat); 9] = [
            ("allocated_bytes", &self.allocated_bytes),
            ("reserved_bytes", &self.reserved_bytes),
            ("active_bytes", &self.active_bytes),
            ("inactive_split_bytes", &self.inactive_split_bytes),
            ("requested_bytes", &self.requested_bytes),
            ("allocation", &self.allocation),
            ("segment", &self.segment),
            ("active", &self.active),
            ("inactive_split", &self.inactive_split),
        ];
        let mut out = Vec::with_capacity(named.len() * 4 + 4);
        for (name, stat) in named {
            for (field, value) in [
                ("current", stat.current),
                ("peak", stat.peak),
                ("allocated", stat.allocated),
                ("freed", stat.freed),
            ] {
                out.push((format!("{name}.all.{field}"), value));
            }
        }
        out.push(("num_alloc_retries".into(), self.num_alloc_retries));
        out.push(("num_ooms".into(), self.num_ooms));
        out.push(("num_device_alloc".into(), self.num_device_alloc));
        out.push(("num_device_free".into(), self.num_device_free));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_tracks_peak_and_totals() {
        let mut s = Stat::default();
        s.increase(10);
        s.increase(5);
        s.decrease(12);
        assert_eq!((s.current, s.peak, s.allocated, s.freed), (3, 15, 15, 12));
        let mut all = MemoryStats {
            allocated_bytes: s,
            ..Default::default()
        };
        all.reset_peaks();
        assert_eq!(all.allocated_bytes.peak, 3);
        let pairs = all.to_pairs();
        assert!(pairs.contains(&("allocated_bytes.all.freed".to_string(), 12)));
        assert_eq!(pairs.len(), 9 * 4 + 4);
    }
}
