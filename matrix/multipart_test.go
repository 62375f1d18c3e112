package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"
)

// goldenBoundary is RFC 2046's example boundary.
const goldenBoundary = "gc0p4Jq0M2Yt08jU534c0p"

func TestWriteMultipartGolden(t *testing.T) {
	var buf bytes.Buffer
	n, err := WriteMultipart(&buf, goldenBoundary, "image/png", `inline; filename="cat.png"`, strings.NewReader("\x89PNG\r\n\x1a\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\r\n" +
		"--gc0p4Jq0M2Yt08jU534c0p\r\n" +
		"Content-Type: application/json\r\n" +
		"\r\n" +
		"{}\r\n" +
		"--gc0p4Jq0M2Yt08jU534c0p\r\n" +
		"Content-Type: image/png\r\n" +
		"Content-Disposition: inline; filename=\"cat.png\"\r\n" +
		"\r\n" +
		"\x89PNG\r\n\x1a\n" +
		"\r\n--gc0p4Jq0M2Yt08jU534c0p--\r\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteMultipart wrote\n%q\nwant\n%q", got, want)
	}
	if n != int64(len(want)) {
		t.Errorf("written = %d, want %d", n, len(want))
	}

	// No Content-Disposition, no Content-Type.
	buf.Reset()
	if _, err := WriteMultipart(&buf, goldenBoundary, "", "", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	want = "\r\n--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: application/json\r\n\r\n{}\r\n" +
		"--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: application/octet-stream\r\n\r\n" +
		"x\r\n--gc0p4Jq0M2Yt08jU534c0p--\r\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteMultipart wrote\n%q\nwant\n%q", got, want)
	}
}

func TestWriteMultipartRedirectGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMultipartRedirect(&buf, goldenBoundary, "https://cdn.example.org/m/abc?sig=1"); err != nil {
		t.Fatal(err)
	}
	want := "\r\n" +
		"--gc0p4Jq0M2Yt08jU534c0p\r\n" +
		"Content-Type: application/json\r\n" +
		"\r\n" +
		"{}\r\n" +
		"--gc0p4Jq0M2Yt08jU534c0p\r\n" +
		"Location: https://cdn.example.org/m/abc?sig=1\r\n" +
		"\r\n" +
		"\r\n--gc0p4Jq0M2Yt08jU534c0p--\r\n"
	if got := buf.String(); got != want {
		t.Errorf("WriteMultipartRedirect wrote\n%q\nwant\n%q", got, want)
	}
}

func TestWriteMultipartRefuses(t *testing.T) {
	cases := []struct {
		name, boundary, ct, cd string
	}{
		{"empty boundary", "", "image/png", ""},
		{"long boundary", strings.Repeat("a", 71), "image/png", ""},
		{"boundary ends in space", "abc ", "image/png", ""},
		{"boundary with CR", "ab\rc", "image/png", ""},
		{"boundary with quote", `ab"c`, "image/png", ""},
		{"content type with LF", goldenBoundary, "image/png\nX-Evil: 1", ""},
		{"disposition with CRLF", goldenBoundary, "image/png", "inline\r\n\r\nbody"},
		{"disposition with NUL", goldenBoundary, "image/png", "inline\x00"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		n, err := WriteMultipart(&buf, c.boundary, c.ct, c.cd, strings.NewReader("x"))
		if !errors.Is(err, ErrBadMultipart) {
			t.Errorf("%s: err = %v, want ErrBadMultipart", c.name, err)
		}
		if n != 0 || buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before refusing", c.name, buf.Len())
		}
	}
	for _, loc := range []string{"", "/relative", "ftp://x/y", "https://", "https://x/\r\nX: y"} {
		if err := WriteMultipartRedirect(io.Discard, goldenBoundary, loc); !errors.Is(err, ErrBadMultipart) {
			t.Errorf("WriteMultipartRedirect(%q) = %v, want ErrBadMultipart", loc, err)
		}
	}
	if err := WriteMultipartRedirect(io.Discard, "", "https://x/y"); !errors.Is(err, ErrBadMultipart) {
		t.Errorf("WriteMultipartRedirect with empty boundary = %v, want ErrBadMultipart", err)
	}
}

func TestWriteMultipartErrors(t *testing.T) {
	bodyErr := errors.New("disk on fire")
	_, err := WriteMultipart(io.Discard, goldenBoundary, "image/png", "", iotest.ErrReader(bodyErr))
	if !errors.Is(err, bodyErr) {
		t.Errorf("body error: got %v, want %v", err, bodyErr)
	}
	w := &failingWriter{after: 10}
	n, err := WriteMultipart(w, goldenBoundary, "image/png", "", strings.NewReader("x"))
	if !errors.Is(err, errWriterFull) || n != 10 {
		t.Errorf("writer error: got %d, %v; want 10, %v", n, err, errWriterFull)
	}
}

var errWriterFull = errors.New("writer full")

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errWriterFull
	}
	w.after -= len(p)
	return len(p), nil
}

func TestNewBoundary(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		b := NewBoundary()
		if len(b) != 32 || strings.Trim(b, "0123456789abcdef") != "" {
			t.Fatalf("NewBoundary() = %q, want 32 hex characters", b)
		}
		if err := checkBoundary(b); err != nil {
			t.Fatal(err)
		}
		if seen[b] {
			t.Fatalf("NewBoundary repeated %q", b)
		}
		seen[b] = true
	}
}

func TestMultipartContentType(t *testing.T) {
	for b, want := range map[string]string{
		"0123abcd": "multipart/mixed; boundary=0123abcd",
		"a b:c":    `multipart/mixed; boundary="a b:c"`,
	} {
		got := MultipartContentType(b)
		if got != want {
			t.Errorf("MultipartContentType(%q) = %q, want %q", b, got, want)
		}
		_, params, err := mime.ParseMediaType(got)
		if err != nil || params["boundary"] != b {
			t.Errorf("%q does not parse back to boundary %q: %v %v", got, b, params, err)
		}
	}
}

// readAll reads a whole response, failing the test on any error.
func readAll(t *testing.T, contentType string, r io.Reader) (json.RawMessage, MediaPart, []byte) {
	t.Helper()
	meta, part, err := ReadMultipart(contentType, r)
	if err != nil {
		t.Fatalf("ReadMultipart: %v", err)
	}
	body, err := io.ReadAll(part.Body)
	if err != nil {
		t.Fatalf("read media part: %v", err)
	}
	return meta, part, body
}

func TestMultipartRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"empty":          nil,
		"text":           []byte("hello, world"),
		"crlf":           []byte("\r\n\r\n"),
		"delimiter-like": []byte("\r\n--" + goldenBoundary[:10] + "\r\n--x--"),
		"binary":         bytes.Repeat([]byte{0, 0xff, '\r', '\n', '-'}, 5000),
	}
	for name, body := range bodies {
		for _, b := range []string{NewBoundary(), goldenBoundary, "with space:and=quote?"} {
			var buf bytes.Buffer
			const ct, cd = "image/png", `attachment; filename*=utf-8''%C3%A9t%C3%A9.png`
			if _, err := WriteMultipart(&buf, b, ct, cd, bytes.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			meta, part, got := readAll(t, MultipartContentType(b), &buf)
			if string(meta) != "{}" {
				t.Errorf("%s: metadata = %q, want {}", name, meta)
			}
			if part.ContentType != ct || part.ContentDisposition != cd || part.Location != "" {
				t.Errorf("%s: part = %+v", name, part)
			}
			if !bytes.Equal(got, body) {
				t.Errorf("%s: body = %q, want %q", name, got, body)
			}
		}
	}

	var buf bytes.Buffer
	const loc = "https://cdn.example.org/m/abc?sig=1"
	if err := WriteMultipartRedirect(&buf, goldenBoundary, loc); err != nil {
		t.Fatal(err)
	}
	_, part, got := readAll(t, MultipartContentType(goldenBoundary), &buf)
	if part.Location != loc || len(got) != 0 || part.ContentType != "" {
		t.Errorf("redirect: part = %+v, body %q", part, got)
	}
}

func TestReadMultipartLenient(t *testing.T) {
	const png = "\x89PNG\r\n\x1a\nrest"
	cases := []struct {
		name, contentType, body string
		ct, cd, loc, want       string
	}{
		{
			name:        "synapse",
			contentType: "multipart/mixed; boundary=6b3b8e3bd3c94a2d8c1e2a0f4c1d9b7e",
			body: "\r\n--6b3b8e3bd3c94a2d8c1e2a0f4c1d9b7e\r\nContent-Type: application/json\r\n\r\n{}" +
				"\r\n--6b3b8e3bd3c94a2d8c1e2a0f4c1d9b7e\r\nContent-Type: image/png\r\n" +
				"Content-Disposition: inline; filename=cat.png\r\n\r\n" + png +
				"\r\n--6b3b8e3bd3c94a2d8c1e2a0f4c1d9b7e--\r\n",
			ct: "image/png", cd: "inline; filename=cat.png", want: png,
		},
		{
			name:        "LF only",
			contentType: "multipart/mixed; boundary=b",
			body: "\n--b\nContent-Type: application/json\n\n{}\n--b\nContent-Type: text/plain\n\n" +
				"line one\nline two\n--b--\n",
			ct: "text/plain", want: "line one\nline two",
		},
		{
			name:        "quoted boundary",
			contentType: `multipart/mixed; boundary="a:b c"`,
			body:        "\r\n--a:b c\r\nContent-Type: application/json\r\n\r\n{}\r\n--a:b c\r\nContent-Type: text/plain\r\n\r\nhi\r\n--a:b c--\r\n",
			ct:          "text/plain", want: "hi",
		},
		{
			name:        "no leading CRLF, mixed case type",
			contentType: "Multipart/Mixed; Boundary=b",
			body:        "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
			ct:          "text/plain", want: "hi",
		},
		{
			name:        "preamble, padding after boundaries, epilogue",
			contentType: "multipart/mixed; boundary=b",
			body: "This is a preamble.\r\n--b \t\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{\"k\": [1, 2]}\r\n" +
				"--b  \r\ncontent-type: text/plain\r\ncontent-disposition: attachment\r\n\r\nhi\r\n--b-- \r\nepilogue",
			ct: "text/plain", cd: "attachment", want: "hi",
		},
		{
			name:        "no final CRLF",
			contentType: "multipart/mixed; boundary=b",
			body:        "--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--",
			ct:          "text/plain", want: "hi",
		},
		{
			name:        "metadata without Content-Type, extra part ignored",
			contentType: "multipart/mixed; boundary=b",
			body: "--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
				"--b\r\nContent-Type: text/plain\r\n\r\nthird\r\n--b--\r\n",
			ct: "text/plain", want: "hi",
		},
		{
			name:        "location",
			contentType: "multipart/mixed; boundary=b",
			body:        "\r\n--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nLocation: https://cdn.example.org/x\r\n\r\n\r\n--b--\r\n",
			loc:         "https://cdn.example.org/x",
		},
		{
			name:        "location, no empty body line",
			contentType: "multipart/mixed; boundary=b",
			body:        "--b\nContent-Type: application/json\n\n{}\n--b\nLocation: http://cdn.example.org/x\n\n--b--",
			loc:         "http://cdn.example.org/x",
		},
		{
			name:        "multipart/form-data",
			contentType: "multipart/form-data; boundary=b",
			body:        "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
			ct:          "text/plain", want: "hi",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte at a time: the parser must not depend on read sizes.
			for _, r := range []io.Reader{strings.NewReader(c.body), iotest.OneByteReader(strings.NewReader(c.body))} {
				meta, part, got := readAll(t, c.contentType, r)
				if !json.Valid(meta) {
					t.Errorf("metadata %q is not JSON", meta)
				}
				if part.ContentType != c.ct || part.ContentDisposition != c.cd || part.Location != c.loc {
					t.Errorf("part = %+v, want ct %q cd %q loc %q", part, c.ct, c.cd, c.loc)
				}
				if string(got) != c.want {
					t.Errorf("body = %q, want %q", got, c.want)
				}
			}
		})
	}
}

// TestReadMultipartGoWriter reads what mime/multipart.Writer produces (no
// leading CRLF), as a Go homeserver might send it.
func TestReadMultipartGoWriter(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	io.WriteString(w, `{}`)
	w, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/gif"}, "Content-Disposition": {"inline"}})
	io.WriteString(w, "GIF89a")
	mw.Close()
	_, part, got := readAll(t, mw.FormDataContentType(), &buf)
	if part.ContentType != "image/gif" || part.ContentDisposition != "inline" || string(got) != "GIF89a" {
		t.Errorf("part = %+v, body %q", part, got)
	}
}

func TestReadMultipartMalformed(t *testing.T) {
	const ok = "multipart/mixed; boundary=b"
	cases := []struct{ name, contentType, body string }{
		{"no content type", "", "--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"not multipart", "application/json; boundary=b", "--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"no boundary", "multipart/mixed", "--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"empty boundary", `multipart/mixed; boundary=""`, "--\r\n\r\n{}\r\n"},
		{"long boundary", "multipart/mixed; boundary=" + strings.Repeat("b", 71), ""},
		{"unparsable content type", "multipart/mixed; boundary=b; boundary=c", ""},
		{"empty body", ok, ""},
		{"no boundary in body", ok, "just some bytes\r\n"},
		{"one part", ok, "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--\r\n"},
		{"one part, truncated", ok, "--b\r\nContent-Type: application/json\r\n\r\n{}"},
		{"metadata not JSON", ok, "--b\r\nContent-Type: application/json\r\n\r\nnope\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"metadata empty", ok, "--b\r\nContent-Type: application/json\r\n\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"metadata wrong type", ok, "--b\r\nContent-Type: text/plain\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"metadata too large", ok, "--b\r\n\r\n\"" + strings.Repeat("a", MaxMultipartMetadata) + "\"\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"header without blank line (old Synapse)", ok, "\r\n--b\r\nContent-Type: application/json\r\n{}\r\n--b\r\nContent-Type: image/png\r\nPNG\r\n--b--\r\n"},
		{"malformed header", ok, "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nno colon here\r\n\r\nx\r\n--b--\r\n"},
		{"bad location", ok, "--b\r\n\r\n{}\r\n--b\r\nLocation: /relative/path\r\n\r\n\r\n--b--\r\n"},
		{"javascript location", ok, "--b\r\n\r\n{}\r\n--b\r\nLocation: javascript:alert(1)\r\n\r\n\r\n--b--\r\n"},
		{"huge preamble", ok, strings.Repeat("preamble line\r\n", 20000) + "--b\r\n\r\n{}\r\n--b\r\n\r\nx\r\n--b--\r\n"},
		{"huge headers", ok, "--b\r\n\r\n{}\r\n--b\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", 10000) + "\r\nx\r\n--b--\r\n"},
		{"garbage after metadata", ok, "--b\r\n\r\n{}\r\n--b-x\r\n"},
	}
	for _, c := range cases {
		meta, part, err := ReadMultipart(c.contentType, strings.NewReader(c.body))
		if !errors.Is(err, ErrBadMultipart) {
			t.Errorf("%s: got %q %+v, %v; want ErrBadMultipart", c.name, meta, part, err)
		}
	}
}

func TestReadMultipartTruncatedBody(t *testing.T) {
	in := "--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nsome bytes and then the connection drops"
	_, part, err := ReadMultipart("multipart/mixed; boundary=b", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(part.Body)
	if !errors.Is(err, ErrBadMultipart) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want ErrBadMultipart and io.ErrUnexpectedEOF", err)
	}
	if !strings.HasPrefix("some bytes and then the connection drops", string(got)) {
		t.Errorf("body = %q", got)
	}
}

// An error of the underlying reader is passed on as it is: the response was
// not malformed, the connection failed.
func TestReadMultipartReaderError(t *testing.T) {
	connErr := errors.New("connection reset")
	full := "--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("x", 20000) + "\r\n--b--\r\n"
	for _, at := range []int{0, 3, 12, 30, 10000} {
		r := io.MultiReader(strings.NewReader(full[:at]), iotest.ErrReader(connErr))
		_, part, err := ReadMultipart("multipart/mixed; boundary=b", r)
		if err == nil {
			_, err = io.ReadAll(part.Body)
		}
		if !errors.Is(err, connErr) || errors.Is(err, ErrBadMultipart) {
			t.Errorf("error after %d bytes: got %v, want %v and not ErrBadMultipart", at, err, connErr)
		}
	}
}

// TestReadMultipartStreams checks that the media part is handed over while
// it is still arriving: the writer cannot finish a 10 MiB body through an
// unbuffered pipe before the reader has consumed it.
func TestReadMultipartStreams(t *testing.T) {
	body := make([]byte, 10<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	boundary := NewBoundary()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := WriteMultipart(pw, boundary, "video/mp4", "inline", bytes.NewReader(body))
		pw.CloseWithError(err)
		done <- err
	}()

	meta, part, err := ReadMultipart(MultipartContentType(boundary), pr)
	if err != nil {
		t.Fatal(err)
	}
	var first [1]byte
	if _, err := io.ReadFull(part.Body, first[:]); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("writer finished (%v) before the reader took more than the first byte", err)
	default:
	}
	if first[0] != body[0] || string(meta) != "{}" || part.ContentType != "video/mp4" {
		t.Fatalf("first byte %#x, meta %q, part %+v", first[0], meta, part)
	}
	rest, err := io.ReadAll(part.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(first[:], rest...), body) {
		t.Fatal("body differs")
	}
}

// FuzzReadMultipart: whatever the input, ReadMultipart does not panic, fails
// only with ErrBadMultipart (the reader never fails), and what it accepts
// honours its contract.
func FuzzReadMultipart(f *testing.F) {
	f.Add("multipart/mixed; boundary=b", []byte("--b\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		meta, part, err := ReadMultipart(contentType, bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadMultipart) {
				t.Fatalf("error is not ErrBadMultipart: %v", err)
			}
			return
		}
		if len(meta) > MaxMultipartMetadata || !json.Valid(meta) {
			t.Fatalf("metadata %q", meta)
		}
		if part.Location != "" && checkLocation(part.Location) != nil {
			t.Fatalf("bad Location accepted: %q", part.Location)
		}
		got, err := io.ReadAll(part.Body)
		if err != nil && !errors.Is(err, ErrBadMultipart) {
			t.Fatalf("body error is not ErrBadMultipart: %v", err)
		}
		if len(got) > len(data) {
			t.Fatalf("body of %d bytes from %d bytes of input", len(got), len(data))
		}
	})
}

func ExampleReadMultipart() {
	// A homeserver answering GET /_matrix/federation/v1/media/download/{mediaId}:
	var response bytes.Buffer
	boundary := "3f1b7c0e9a2d4b6f8c0e1a3b5d7f9a1c" // NewBoundary() in real code
	WriteMultipart(&response, boundary, "text/plain", "inline; filename=hello.txt", strings.NewReader("hello, world"))

	// The requesting server:
	meta, part, err := ReadMultipart(MultipartContentType(boundary), &response)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(part.Body) // io.Copy into the store in real code
	fmt.Printf("metadata %s\n", meta)
	fmt.Printf("%s, %s: %s\n", part.ContentType, part.ContentDisposition, body)
	// Output:
	// metadata {}
	// text/plain, inline; filename=hello.txt: hello, world
}

func ExampleWriteMultipart() {
	var buf bytes.Buffer
	WriteMultipart(&buf, "B0UNDARY", "image/png", "inline", strings.NewReader("<png bytes>"))
	fmt.Println(MultipartContentType("B0UNDARY"))
	fmt.Print(strings.ReplaceAll(buf.String(), "\r\n", "\\r\\n\n"))
	// Output:
	// multipart/mixed; boundary=B0UNDARY
	// \r\n
	// --B0UNDARY\r\n
	// Content-Type: application/json\r\n
	// \r\n
	// {}\r\n
	// --B0UNDARY\r\n
	// Content-Type: image/png\r\n
	// Content-Disposition: inline\r\n
	// \r\n
	// <png bytes>\r\n
	// --B0UNDARY--\r\n
}
