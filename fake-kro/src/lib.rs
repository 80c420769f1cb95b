//! fake-kro: a simulation of kro (RGD → CRD generation, offline RGD checks, instance lifecycle).
