package main

import (
	"github.com/wsdiag/wsdiag/cmd/internal/report"
)

// newReport starts the --html report; nil (which ignores everything)
// without --html.
func (c *common) newReport(title string, live bool) *report.Report {
	if c.html == "" {
		return nil
	}
	return report.New(report.Options{Title: title, ShowSecrets: c.showSecrets, Live: live})
}

// reportSummary gives the report the run's figures it shows.
func reportSummary(r *report.Report, sum *SummaryLine) {
	r.SetSummary(report.Summary{Packets: sum.Packets, TCP: sum.TCPPackets, Connections: sum.Connections, KernelDrops: sum.KernelDrops,
		Notes: sum.notes(), Warnings: sum.Warnings})
}
