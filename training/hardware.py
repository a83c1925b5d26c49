"""Peak dense bf16 tensor-core FLOP/s of accelerators, for MFU (no sparsity).

From NVIDIA's datasheets: H100 SXM 989 TFLOP/s, H100 PCIe 756, H100 NVL 835; H200 (SXM and NVL) 989;
A100 312; L40S 362. The first key found in the device's name wins, so specific names come first.
"""

from __future__ import annotations

PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H200": 989.0, "H20": 148.0,
               "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0, "A10": 125.0, "4090": 165.0,
               "3090": 71.0, "V100": 125.0}


def peak_tflops_of(name: str) -> float | None:
    """Peak TFLOP/s of the device called `name` (torch.cuda.get_device_name), None if unknown."""
    for key, tf in PEAK_TFLOPS.items():
        if key in name:
            return tf
    return None
