package web

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// chartDays is how many days the overview's chart shows, ending at the day
// of the latest message.
const chartDays = 14

// chartScan is how many messages the overview reads at most for its chart.
const chartScan = 100000

type dayCount struct {
	Day        time.Time
	Email, SMS int
}

// messagesPerDay counts messages (not cancelled) per day and channel over
// the chartDays ending at the latest message, paging the outbox.
func (s *Server) messagesPerDay(r *http.Request) ([]dayCount, error) {
	byDay := map[time.Time]*dayCount{}
	var last time.Time
	p := &nudge.MessageListParams{Limit: 10000}
	for n := 0; n < chartScan; {
		ms, err := s.store.MessageList(r.Context(), p)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Status == nudge.MessageCancelled {
				continue
			}
			d := m.CreatedAt.UTC().Truncate(24 * time.Hour)
			dc := byDay[d]
			if dc == nil {
				dc = &dayCount{Day: d}
				byDay[d] = dc
			}
			switch m.Channel {
			case nudge.ChannelEmail:
				dc.Email++
			case nudge.ChannelSMS:
				dc.SMS++
			}
			if d.After(last) {
				last = d
			}
		}
		n += len(ms)
		if len(ms) < p.Limit {
			break
		}
		p.AfterID = ms[len(ms)-1].ID
	}
	if last.IsZero() {
		last = s.clock.Now().UTC().Truncate(24 * time.Hour)
	}
	out := make([]dayCount, chartDays)
	for i := range out {
		d := last.AddDate(0, 0, i-chartDays+1)
		out[i] = dayCount{Day: d}
		if dc := byDay[d]; dc != nil {
			out[i] = *dc
		}
	}
	return out, nil
}

// barChart draws messages per day as grouped bars: email solid, SMS
// hatched, each bar with a <title> and its number written above it, so
// the chart reads without colour.
func barChart(days []dayCount) template.HTML {
	const (
		w, h          = 720, 260
		left, bottom  = 40, 50
		top, barWidth = 20, 14
	)
	maxV := 1
	for _, d := range days {
		maxV = max(maxV, d.Email, d.SMS)
	}
	plotH := float64(h - top - bottom)
	step := float64(w-left-10) / float64(len(days))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, w, h)
	b.WriteString(`<title id="chart-title">Messages per day by channel</title>`)
	total := 0
	for _, d := range days {
		total += d.Email + d.SMS
	}
	fmt.Fprintf(&b, `<desc id="chart-desc">%d messages over %d days; email bars are solid, SMS bars are hatched.</desc>`, total, len(days))
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="sms-bg"/><line x1="0" y1="0" x2="0" y2="6" class="sms-line"/></pattern></defs>`)
	// Axes and a few gridlines.
	for i := 0; i <= 4; i++ {
		v := maxV * i / 4
		y := float64(top) + plotH - plotH*float64(v)/float64(maxV)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="axis" x="%d" y="%.1f" text-anchor="end">%d</text>`, left, w-10, y, y, left-4, y+4, v)
	}
	for i, d := range days {
		x := float64(left) + step*float64(i) + step/2 - barWidth
		label := d.Day.Format("Jan 2")
		for k, bar := range []struct {
			n     int
			class string
			name  string
		}{{d.Email, "bar email", "email"}, {d.SMS, "bar sms", "SMS"}} {
			bh := plotH * float64(bar.n) / float64(maxV)
			bx := x + float64(k*barWidth)
			by := float64(top) + plotH - bh
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%d" height="%.1f"><title>%s: %d %s</title></rect>`,
				bar.class, bx, by, barWidth-1, bh, label, bar.n, bar.name)
			if bar.n > 0 {
				fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f" text-anchor="middle">%d</text>`, bx+barWidth/2, by-3, bar.n)
			}
		}
		if i%2 == 0 || len(days) <= 7 {
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+barWidth, h-bottom+16, label)
		}
	}
	fmt.Fprintf(&b, `<line class="axisline" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, w-10, float64(top)+plotH, float64(top)+plotH)
	// Legend: shape and words, not colour alone.
	ly := h - 14
	fmt.Fprintf(&b, `<rect class="bar email" x="%d" y="%d" width="12" height="12"/><text class="axis" x="%d" y="%d">Email (solid)</text>`, left, ly-10, left+16, ly)
	fmt.Fprintf(&b, `<rect class="bar sms" x="%d" y="%d" width="12" height="12"/><text class="axis" x="%d" y="%d">SMS (hatched)</text>`, left+130, ly-10, left+146, ly)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value written is a number or a fixed word
}
