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

// hseries is one series of a horizontal bar chart; its class gives the bar
// a fill that differs by pattern as well as colour.
type hseries struct{ Name, Class, Shape string }

// hrow is one row of a horizontal bar chart: a value per series, and the
// words written after each bar.
type hrow struct {
	Label  string
	Values []float64
	Text   []string
}

// hbarChart draws rows of horizontal bars, one per series, each with its
// number written beside it and a <title> for hover, a value axis with
// ticks labelled by tick, and a legend that names each series' pattern.
func hbarChart(id, title, axisTitle string, series []hseries, rows []hrow, tick func(float64) string) template.HTML {
	const (
		w, labelW, right = 760.0, 170.0, 210.0
		barH, rowGap     = 14.0, 12.0
		top              = 10.0
	)
	maxV := 0.0
	for _, r := range rows {
		for _, v := range r.Values {
			maxV = max(maxV, v)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	plotW := w - labelW - right
	rowH := barH*float64(len(series)) + rowGap
	plotH := rowH * float64(len(rows))
	h := top + plotH + 70
	esc := template.HTMLEscapeString
	var b strings.Builder
	svgOpen(&b, "hbar", id, title, w, h)
	xTicks(&b, 0, maxV, func(v float64) float64 { return labelW + plotW*v/maxV }, top, plotH, tick)
	fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, labelW+plotW/2, top+plotH+30, esc(axisTitle))
	for i, r := range rows {
		y := top + float64(i)*rowH
		fmt.Fprintf(&b, `<text class="axis rowlabel" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, labelW-6, y+barH*float64(len(series))/2+4, esc(truncate(r.Label, 26)))
		for k, v := range r.Values {
			bw := plotW * v / maxV
			by := y + float64(k)*barH
			text := ""
			if k < len(r.Text) {
				text = r.Text[k]
			}
			fmt.Fprintf(&b, `<g class="hb"><rect class="bar %s"%s x="%.1f" y="%.1f" width="%.1f" height="%.0f"><title>%s, %s: %s</title></rect><text class="value" x="%.1f" y="%.1f">%s</text></g>`,
				series[k].Class, fill(id, series[k].Class), labelW, by, max(bw, 0.5), barH-2, esc(r.Label), esc(series[k].Name), esc(text), labelW+bw+4, by+barH-4, esc(text))
		}
	}
	fmt.Fprintf(&b, `<line class="axisline" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, labelW, labelW, top, top+plotH)
	lx := labelW
	for _, s := range series {
		fmt.Fprintf(&b, `<rect class="bar %s"%s x="%.1f" y="%.1f" width="12" height="12"/><text class="axis" x="%.1f" y="%.1f">%s (%s)</text>`,
			s.Class, fill(id, s.Class), lx, h-22, lx+16, h-12, esc(s.Name), esc(s.Shape))
		lx += 16 + 7*float64(len(s.Name)+len(s.Shape)+3) + 14
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text written went through esc
}

// intervalRow is one estimate with its 95% interval, or a note when there
// is none.
type intervalRow struct {
	Label          string
	Est, Low, High float64
	Measured       bool
	Note           string
}

// intervalChart draws estimates as dots with their confidence intervals as
// capped lines on one axis with its zero marked, the numbers written out.
func intervalChart(id, title, axisTitle string, rows []intervalRow, tick func(float64) string) template.HTML {
	const (
		w, labelW, right = 720.0, 170.0, 230.0
		rowH, top        = 30.0, 10.0
	)
	lo, hi := 0.0, 0.0
	for _, r := range rows {
		if r.Measured {
			lo, hi = min(lo, r.Low), max(hi, r.High)
		}
	}
	if hi-lo == 0 {
		lo, hi = -0.1, 0.1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	plotW := w - labelW - right
	x := func(v float64) float64 { return labelW + plotW*(v-lo)/(hi-lo) }
	plotH := rowH * float64(len(rows))
	h := top + plotH + 50
	esc := template.HTMLEscapeString
	var b strings.Builder
	svgOpen(&b, "interval", id, title, w, h)
	xTicks(&b, lo, hi, x, top, plotH, tick)
	fmt.Fprintf(&b, `<line class="zero" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="axis" x="%.1f" y="%.1f" text-anchor="middle">no difference</text>`,
		x(0), x(0), top, top+plotH, x(0), top+plotH+28)
	fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, labelW+plotW/2, top+plotH+42, esc(axisTitle))
	for i, r := range rows {
		y := top + float64(i)*rowH + rowH/2
		fmt.Fprintf(&b, `<text class="axis rowlabel" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, labelW-6, y+4, esc(truncate(r.Label, 26)))
		if !r.Measured {
			fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f">%s</text>`, labelW+4, y+4, esc(r.Note))
			continue
		}
		text := fmt.Sprintf("%s (95%% CI %s to %s)", tick(r.Est), tick(r.Low), tick(r.High))
		fmt.Fprintf(&b, `<g class="ci"><title>%s: %s</title><line class="ci-line" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, esc(r.Label), esc(text), x(r.Low), x(r.High), y, y)
		for _, v := range []float64{r.Low, r.High} {
			fmt.Fprintf(&b, `<line class="ci-line" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, x(v), x(v), y-7, y+7)
		}
		fmt.Fprintf(&b, `<circle class="ci-dot" cx="%.1f" cy="%.1f" r="5"/><text class="value" x="%.1f" y="%.1f">%s</text></g>`, x(r.Est), y, w-right+8, y+4, esc(text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text written went through esc
}

// points writes a difference of rates in percentage points.
func points(f float64) string { return fmt.Sprintf("%+.1f pts", 100*f) }

// count writes a number of enrollments or messages.
func count(f float64) string { return fmt.Sprintf("%.0f", f) }

// pct writes a rate as a percentage.
func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// span writes a duration given in seconds in the largest sensible unit.
func span(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d == 0:
		return "0"
	case d < time.Hour:
		return fmt.Sprintf("%.0f min", d.Minutes())
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f d", d.Hours()/24)
}

// svgOpen starts a chart's <svg> with its accessible title.
func svgOpen(b *strings.Builder, class, id, title string, w, h float64) {
	fmt.Fprintf(b, `<svg class="chart %s" id="%s" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t" xmlns="http://www.w3.org/2000/svg">`, class, id, w, h, id)
	fmt.Fprintf(b, `<title id="%s-t">%s</title>`, id, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<defs><pattern id="%s-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="sms-bg"/><line x1="0" y1="0" x2="0" y2="6" class="sms-line"/></pattern></defs>`, id)
}

// fill is the fill attribute of a bar of series class c in chart id: the
// hatched series refers to its chart's own pattern.
func fill(id, c string) string {
	if c == "s1" {
		return fmt.Sprintf(` fill="url(#%s-hatch)"`, id)
	}
	return ""
}

// xTicks draws five vertical gridlines from lo to hi, placed by x, each
// labelled by tick under the plot.
func xTicks(b *strings.Builder, lo, hi float64, x func(float64) float64, top, plotH float64, tick func(float64) string) {
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
			x(v), x(v), top, top+plotH, x(v), top+plotH+14, template.HTMLEscapeString(tick(v)))
	}
}
