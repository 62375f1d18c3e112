package archive

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// indexPage is index.html: a plain table of the archive's media. html/template
// escapes every value, so hostile names cannot inject markup.
var indexPage = template.Must(template.New(indexName).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Media export for {{.Entity}}</title></head>
<body><h1>Media export for {{.Entity}}</h1>
<p>Created {{.Created}}. {{len .Media}} media. The files are in the export-part-N.tgz archives.</p>
<table>
<tr><th>mxc URI</th><th>Name</th><th>Archived file</th><th>Content type</th><th>Size</th><th>Uploaded</th><th>Uploader</th><th>SHA-256</th></tr>
{{range .Media}}<tr><td>{{.MXC}}</td><td>{{.Name}}</td><td>{{.FileName}}</td><td>{{.ContentType}}</td><td>{{.Size}}</td><td>{{.Uploaded}}</td><td>{{.Uploader}}</td><td><code>{{.SHA256}}</code></td></tr>
{{end}}</table></body></html>
`))

type indexRow struct {
	MXC, Name, FileName, ContentType, Size, Uploaded, Uploader, SHA256 string
}

// writeIndex renders m's media in order.
func writeIndex(w io.Writer, m *Manifest, order []string) error {
	rows := make([]indexRow, 0, len(order))
	for _, k := range order {
		r := m.Media[k]
		rows = append(rows, indexRow{
			MXC: k, Name: r.Name, FileName: r.FileName, ContentType: r.ContentType,
			Size: humanBytes(r.SizeBytes), Uploaded: time.UnixMilli(r.CreatedTS).UTC().Format(time.UnixDate),
			Uploader: r.Uploader, SHA256: r.SHA256,
		})
	}
	return indexPage.Execute(w, struct {
		Entity, Created string
		Media           []indexRow
	}{m.EntityID, time.UnixMilli(m.CreatedTS).UTC().Format(time.UnixDate), rows})
}

// humanBytes formats n in SI units as MMR's index does (go-humanize).
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n), "kMGTPE"
	i := -1
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, units[i])
}
