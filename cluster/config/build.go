package config

import "path/filepath"

// Building is the last phase: it copies a raw file that decoded and
// validated without errors into the model. It cannot fail; every rule it
// relies on was checked before.

func build(f *rawFile) *Cluster {
	rc := f.Clusters[0]
	c := &Cluster{
		Name:        rc.Name,
		File:        f.Filename,
		SecretFile:  secretPath(f.Filename, rc.SecretFile.V),
		Quorum:      rc.Quorum.V,
		StartupWait: rc.StartupWait.V,
	}
	for _, n := range f.Nodes {
		c.Nodes = append(c.Nodes, Node{
			Name:               n.Name,
			Address:            n.Address.V,
			ReplicationAddress: n.ReplicationAddress.V,
			Witness:            n.Witness.V,
		})
	}
	for _, r := range f.VRRP {
		c.VRRP = append(c.VRRP, buildVRRP(r))
	}
	for _, v := range f.Volumes {
		c.Volumes = append(c.Volumes, buildVolume(v))
	}
	for _, g := range f.Groups {
		c.Groups = append(c.Groups, buildGroup(g))
	}
	return c
}

// secretPath resolves a relative secret_file against the cluster file's
// directory, so the file works wherever the agent's working directory is.
func secretPath(clusterFile, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(clusterFile), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return filepath.Clean(p)
}

func buildVRRP(r *rawVRRP) VRRPInstance {
	v := VRRPInstance{
		Name:            r.Name,
		Interface:       r.Interface.V,
		VRID:            uint8(r.VRID.V),
		Version:         r.Version.V,
		AdvertInterval:  r.AdvertInterval.V,
		Priority:        make(map[string]uint8, len(r.Priority.Entries)),
		Preempt:         r.Preempt.V,
		PreemptDelay:    r.PreemptDelay.V,
		VirtualIPs:      items(r.VirtualIPs),
		TrackInterfaces: items(r.TrackInterfaces),
		UnicastPeers:    items(r.UnicastPeers),
		UnicastSource:   entries(r.UnicastSource),
		AuthPass:        r.AuthPass.V,
		V3PseudoHeader:  r.V3PseudoHeader.V,
		GARPCount:       r.GARPCount.V,
		GARPRepeatDelay: r.GARPRepeatDelay.V,
		GARPRefresh:     r.GARPRefresh.V,
		VMAC:            r.VMAC.V,
	}
	for _, e := range r.Priority.Entries {
		v.Priority[e.Key] = uint8(e.V)
	}
	for _, rc := range r.Checks {
		v.Checks = append(v.Checks, buildCheck(rc))
	}
	return v
}

func buildCheck(r *rawCheck) Check {
	c := Check{
		Name:     r.Name,
		Interval: r.Interval.V,
		Timeout:  r.Timeout.V,
		Rise:     r.Rise.V,
		Fall:     r.Fall.V,
		Weight:   r.Weight.V,
	}
	switch {
	case r.Exec.Set:
		c.Kind, c.Exec = CheckExec, items(r.Exec)
	case r.TCP.Set:
		c.Kind, c.Address = CheckTCP, r.TCP.V
	case r.HTTP.Set:
		c.Kind, c.Address, c.Status = CheckHTTP, r.HTTP.V, r.HTTPStatus.V
	case r.DNS.Set:
		c.Kind, c.Address, c.Query = CheckDNS, r.DNS.V, r.DNSQuery.V
	}
	return c
}

func buildVolume(r *rawVolume) Volume {
	v := Volume{
		Name:         r.Name,
		Protocol:     r.Protocol.V,
		Port:         uint16(r.Port.V),
		Disk:         entries(r.Disk),
		MetaInternal: r.MetaInternal,
		Attach:       r.Attach.V,
		Resync: Resync{
			Rate:     r.Resync.Rate.V,
			MinRate:  r.Resync.MinRate.V,
			MaxRate:  r.Resync.MaxRate.V,
			Checksum: r.Resync.Checksum.V,
		},
		SplitBrain: SplitBrain{
			After0Pri: r.SplitBrain.After0Pri.V,
			After1Pri: r.SplitBrain.After1Pri.V,
			After2Pri: r.SplitBrain.After2Pri.V,
		},
	}
	if !r.MetaInternal {
		v.Meta = entries(r.MetaMap)
	}
	return v
}

func buildGroup(r *rawGroup) Group {
	g := Group{
		Name:               r.Name,
		VRRP:               r.VRRP.V,
		Volume:             r.Volume.V,
		OnStopFailure:      r.OnStopFailure.V,
		MigrationThreshold: r.MigrationThreshold.V,
		FailureTimeout:     r.FailureTimeout.V,
	}
	if fs := r.Filesystem; fs != nil {
		g.Filesystem = &Filesystem{
			Mountpoint:   fs.Mountpoint.V,
			FSType:       fs.FSType.V,
			Options:      items(fs.Options),
			Fsck:         fs.Fsck.V,
			MonitorWrite: fs.MonitorWrite.V,
			Timeout:      fs.Timeout.V,
		}
	}
	for _, rr := range r.Resources {
		g.Resources = append(g.Resources, Resource{
			Kind:            rr.Kind,
			Name:            rr.Name,
			Unit:            rr.Unit.V,
			Start:           items(rr.Start),
			Stop:            items(rr.Stop),
			Monitor:         items(rr.Monitor),
			Environment:     entries(rr.Environment),
			Agent:           rr.Agent.V,
			Params:          entries(rr.Params),
			Timeout:         rr.Timeout.V,
			MonitorInterval: rr.MonitorInterval.V,
			MonitorTimeout:  rr.MonitorTimeout.V,
		})
	}
	return g
}

// items copies a list's values; nil when empty.
func items[T any](l list[T]) []T {
	if len(l.Items) == 0 {
		return nil
	}
	out := make([]T, len(l.Items))
	for i, it := range l.Items {
		out[i] = it.V
	}
	return out
}

// entries copies a map's values; nil when empty.
func entries[T any](d dict[T]) map[string]T {
	if len(d.Entries) == 0 {
		return nil
	}
	out := make(map[string]T, len(d.Entries))
	for _, e := range d.Entries {
		out[e.Key] = e.V
	}
	return out
}
