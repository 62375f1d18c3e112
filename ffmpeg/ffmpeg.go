// Package ffmpeg gets still images and audio peaks out of video and audio
// files by running ffprobe and ffmpeg as bounded child processes. It is a
// leaf: it takes Options, never the config, and knows nothing of storage.
//
// Every child runs in its own process group, with its CPU time and address
// space limited (through prlimit(1) when it is installed, else a shell's
// ulimit), only the file and pipe protocols allowed, and its output capped;
// when the context ends or Options.Timeout passes, the whole group is killed
// with SIGKILL and the call returns ErrTimeout. Sources are probed first:
// too many streams, huge declared dimensions or no usable stream are refused
// before a frame is decoded.
//
// Callers pass the path of a verified copy of the media (a regular file they
// own); the Runner never writes to it. A Runner is safe for concurrent use;
// callers bound concurrency themselves.
package ffmpeg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrUnsupported: not a media file ffprobe understands, or no stream of
	// the kind asked for.
	ErrUnsupported = errors.New("ffmpeg: unsupported media")
	// ErrTooLarge: the source's streams, dimensions or the output exceed
	// the Options' bounds.
	ErrTooLarge = errors.New("ffmpeg: media too large")
	// ErrTimeout: the child did not finish within Options.Timeout or the
	// context ended; it was killed with its process group.
	ErrTimeout = errors.New("ffmpeg: timed out")
)

// demuxers are the container formats a child may open (-format_whitelist):
// no playlist or reference formats (hls, dash, concat, imf, ...), which
// would open other local files named inside the upload. mov is also MP4,
// M4A, 3GP and AVIF; matroska is also WebM. yuv4mpegpipe reads raw video.
const demuxers = "mov,matroska,webm,mp3,ogg,flac,wav,aac,avi,mpegts,asf,flv,amr,caf,aiff,w64,yuv4mpegpipe"

// inputArgs open only local files and pipes, in the formats above.
var inputArgs = []string{"-protocol_whitelist", "file,pipe", "-format_whitelist", demuxers}

// errNoFrame: ffmpeg ran to the end without a frame to hand back.
var errNoFrame = fmt.Errorf("%w: no frame decoded", ErrUnsupported)

// Defaults for Options' zero fields.
const (
	DefaultTimeout          = 20 * time.Second
	DefaultMaxCPUSeconds    = 15
	DefaultMaxMemoryBytes   = 1 << 30
	DefaultMaxOutputBytes   = 32 << 20
	DefaultMaxStreams       = 16
	DefaultMaxPixels        = 32_000_000
	DefaultMaxAudioDuration = 10 * time.Minute
	DefaultSampleRate       = 8000
	DefaultMaxDuration      = 4 * time.Hour
	DefaultMaxFrameSide     = 2560
)

// Options configure a Runner. Zero fields take the defaults above.
type Options struct {
	Path             string        // the ffmpeg binary (default "ffmpeg", looked up in PATH)
	ProbePath        string        // the ffprobe binary (default "ffprobe")
	Timeout          time.Duration // wall-clock time per child
	MaxCPUSeconds    int           // RLIMIT_CPU of each child
	MaxMemoryBytes   int64         // RLIMIT_AS of each child
	MaxOutputBytes   int64         // stdout read from a child; more is ErrTooLarge (default: 32 MiB, or a BMP of MaxFrameSide² if larger)
	MaxStreams       int           // streams in a source; more is ErrTooLarge
	MaxPixels        int64         // declared width*height of a video stream; more is ErrTooLarge
	MaxAudioDuration time.Duration // audio decoded for Waveform (the rest is not read)
	SampleRate       int           // Waveform's decode rate, in Hz
	MaxDuration      time.Duration // declared duration of a source; longer is ErrTooLarge
	MaxFrameSide     int           // frames and covers are scaled down to fit a square of this side
}

// WithDefaults returns o with its zero (or negative) fields set to the defaults.
func (o Options) WithDefaults() Options {
	if o.Path == "" {
		o.Path = "ffmpeg"
	}
	if o.ProbePath == "" {
		o.ProbePath = "ffprobe"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxCPUSeconds <= 0 {
		o.MaxCPUSeconds = DefaultMaxCPUSeconds
	}
	if o.MaxMemoryBytes <= 0 {
		o.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxAudioDuration <= 0 {
		o.MaxAudioDuration = DefaultMaxAudioDuration
	}
	if o.SampleRate <= 0 {
		o.SampleRate = DefaultSampleRate
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.MaxFrameSide <= 0 {
		o.MaxFrameSide = DefaultMaxFrameSide
	}
	if o.MaxOutputBytes <= 0 {
		// A BMP of the largest frame fits.
		o.MaxOutputBytes = max(DefaultMaxOutputBytes, 3*int64(o.MaxFrameSide)*int64(o.MaxFrameSide)+4096)
	}
	return o
}

// Runner runs ffprobe and ffmpeg with fixed Options.
type Runner struct {
	opts      Options
	ffmpeg    string
	ffprobe   string
	limitWrap string // path of prlimit, or "" to use sh's ulimit
	maxRSS    atomic.Int64
	children  atomic.Int64
}

// Paths returns the ffmpeg and ffprobe binaries the Runner runs.
func (r *Runner) Paths() (ffmpegPath, ffprobePath string) { return r.ffmpeg, r.ffprobe }

// Options returns the Runner's options, defaults applied.
func (r *Runner) Options() Options { return r.opts }

// Available looks up the ffmpeg and ffprobe binaries of o (defaults applied)
// and returns their paths, or an error naming the one missing.
func Available(o Options) (ffmpegPath, ffprobePath string, err error) {
	o = o.WithDefaults()
	if ffmpegPath, err = exec.LookPath(o.Path); err != nil {
		return "", "", fmt.Errorf("ffmpeg: %w", err)
	}
	if ffprobePath, err = exec.LookPath(o.ProbePath); err != nil {
		return "", "", fmt.Errorf("ffmpeg: %w", err)
	}
	return ffmpegPath, ffprobePath, nil
}

// New returns a Runner, or an error if a binary is missing.
func New(o Options) (*Runner, error) {
	o = o.WithDefaults()
	mp, pp, err := Available(o)
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: o, ffmpeg: mp, ffprobe: pp}
	if p, err := exec.LookPath("prlimit"); err == nil {
		r.limitWrap = p
	}
	return r, nil
}

// Info is what Probe learnt of a source.
type Info struct {
	Duration time.Duration // 0 if unknown
	Video    *Stream       // the first video stream that is not a cover, or nil
	Cover    *Stream       // the first attached picture, or nil
	Audio    *Stream       // the first audio stream, or nil
}

// Stream is one stream of a source.
type Stream struct {
	Index         int
	Codec         string
	Width, Height int
}

type probeJSON struct {
	Streams []struct {
		Index       int    `json:"index"`
		CodecType   string `json:"codec_type"`
		CodecName   string `json:"codec_name"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
		Disposition struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// Probe runs ffprobe on the file at path and checks the Options' bounds:
// more than MaxStreams streams, a video stream declaring more than
// MaxPixels pixels or a declared duration over MaxDuration is ErrTooLarge;
// no video or audio stream is ErrUnsupported.
func (r *Runner) Probe(ctx context.Context, path string) (*Info, error) {
	out, err := r.run(ctx, r.ffprobe, "-v", "error", "-protocol_whitelist", "file", "-format_whitelist", demuxers,
		"-print_format", "json", "-show_streams", "-show_format", "file:"+path)
	if err != nil {
		return nil, err
	}
	var pj probeJSON
	if err := json.Unmarshal(out, &pj); err != nil {
		return nil, fmt.Errorf("%w: ffprobe output: %v", ErrUnsupported, err)
	}
	if len(pj.Streams) > r.opts.MaxStreams {
		return nil, fmt.Errorf("%w: %d streams (at most %d)", ErrTooLarge, len(pj.Streams), r.opts.MaxStreams)
	}
	info := &Info{}
	if d, err := strconv.ParseFloat(pj.Format.Duration, 64); err == nil && d > 0 && d < 1e9 {
		info.Duration = time.Duration(d * float64(time.Second))
	}
	if d, err := strconv.ParseFloat(pj.Format.Duration, 64); err == nil && d > r.opts.MaxDuration.Seconds() {
		return nil, fmt.Errorf("%w: declares %.0f s (at most %.0f)", ErrTooLarge, d, r.opts.MaxDuration.Seconds())
	}
	for _, s := range pj.Streams {
		st := &Stream{Index: s.Index, Codec: s.CodecName, Width: s.Width, Height: s.Height}
		switch s.CodecType {
		case "video":
			if s.Width < 0 || s.Height < 0 || int64(s.Width)*int64(s.Height) > r.opts.MaxPixels {
				return nil, fmt.Errorf("%w: video stream %d is %dx%d", ErrTooLarge, s.Index, s.Width, s.Height)
			}
			if s.Disposition.AttachedPic != 0 {
				if info.Cover == nil {
					info.Cover = st
				}
			} else if info.Video == nil {
				info.Video = st
			}
		case "audio":
			if info.Audio == nil {
				info.Audio = st
			}
		}
	}
	if info.Video == nil && info.Cover == nil && info.Audio == nil {
		return nil, fmt.Errorf("%w: no video or audio stream", ErrUnsupported)
	}
	return info, nil
}

// Frame returns one frame of the first video stream of the file at path as
// an uncompressed BMP, taken at min(1 s, 10% of the duration) and scaled
// down (never up) to fit a square of MaxFrameSide. A source without a video
// stream (an attached picture does not count) is ErrUnsupported.
func (r *Runner) Frame(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	info, err := r.Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	if info.Video == nil {
		return nil, fmt.Errorf("%w: no video stream", ErrUnsupported)
	}
	return r.frame(ctx, path, info)
}

// frame takes the frame at min(1 s, 10% of the duration), or the first
// one when there is none there (a video stream shorter than the file's
// duration, which its audio sets).
func (r *Runner) frame(ctx context.Context, path string, info *Info) ([]byte, error) {
	at := min(time.Second, info.Duration/10)
	b, err := r.still(ctx, path, info.Video.Index, at)
	if errors.Is(err, errNoFrame) && at > 0 {
		b, err = r.still(ctx, path, info.Video.Index, 0)
	}
	return b, err
}

// Cover returns the attached picture (cover art) of the file at path as a
// BMP, scaled as Frame's; a source without one is ErrUnsupported.
func (r *Runner) Cover(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	info, err := r.Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	if info.Cover == nil {
		return nil, fmt.Errorf("%w: no cover", ErrUnsupported)
	}
	return r.still(ctx, path, info.Cover.Index, 0)
}

// Still is the picture of a source Still chose: an image (BMP) of its video
// or cover art, or else the peaks of its audio.
type Still struct {
	Kind  string    // "frame", "cover" or "waveform"
	Image []byte    // BMP, for a frame or a cover
	Peaks []float32 // for a waveform, as Waveform returns them
}

// Still probes the file at path once and returns its picture: a frame of
// its video (as Frame), else its cover art (as Cover), else the peaks of
// its audio in columns columns (as Waveform). A frame that fails to decode
// falls back to the cover or audio when there is one.
func (r *Runner) Still(ctx context.Context, path string, columns int) (*Still, error) {
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	info, err := r.Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	var ferr error
	if info.Video != nil {
		b, err := r.frame(ctx, path, info)
		if err == nil {
			return &Still{Kind: "frame", Image: b}, nil
		}
		if !errors.Is(err, ErrUnsupported) || (info.Cover == nil && info.Audio == nil) {
			return nil, err
		}
		ferr = err
	}
	if info.Cover != nil {
		b, err := r.still(ctx, path, info.Cover.Index, 0)
		if err == nil {
			return &Still{Kind: "cover", Image: b}, nil
		}
		if !errors.Is(err, ErrUnsupported) || info.Audio == nil {
			return nil, err
		}
		ferr = err
	}
	if info.Audio == nil {
		return nil, ferr
	}
	p, err := r.waveform(ctx, path, info, columns)
	if err != nil {
		return nil, err
	}
	return &Still{Kind: "waveform", Peaks: p}, nil
}

// ChildStats are counters over the children a Runner has run.
type ChildStats struct {
	Runs   int64 // children run to the end (or killed)
	MaxRSS int64 // the largest peak resident set of one child, in bytes
}

// Stats returns the counters; safe for concurrent use.
func (r *Runner) Stats() ChildStats {
	return ChildStats{Runs: r.children.Load(), MaxRSS: r.maxRSS.Load()}
}

// oneThread keeps ffmpeg's decoder and filters to one thread each: by
// default they start a thread per CPU (up to 16 for a decoder, unbounded
// for filters), each with its stack and frame buffers, and on a host of
// about ten CPUs or more a 1080p frame no longer decodes within the
// default MaxMemoryBytes (TestFrameManyCPUs). One frame gains nothing from
// frame threading.
var oneThread = []string{"-filter_threads", "1", "-threads", "1"}

func (r *Runner) still(ctx context.Context, path string, stream int, at time.Duration) ([]byte, error) {
	args := append([]string{"-nostdin", "-v", "error"}, append(inputArgs, oneThread...)...)
	if at > 0 {
		args = append(args, "-ss", strconv.FormatFloat(at.Seconds(), 'f', 3, 64))
	}
	side := strconv.Itoa(r.opts.MaxFrameSide)
	args = append(args, "-i", "file:"+path, "-map", "0:"+strconv.Itoa(stream),
		"-vf", "scale=w='min(iw,"+side+")':h='min(ih,"+side+")':force_original_aspect_ratio=decrease",
		"-frames:v", "1", "-f", "image2pipe", "-vcodec", "bmp", "-pix_fmt", "bgr24", "pipe:1")
	out, err := r.run(ctx, r.ffmpeg, args...)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errNoFrame
	}
	return out, nil
}

// Waveform decodes the first audio stream of the file at path (at most
// MaxAudioDuration of it, mono, at SampleRate) and returns columns peak
// values in [0, 1], each the largest absolute sample of its share of the
// audio. A source without audio is ErrUnsupported.
func (r *Runner) Waveform(ctx context.Context, path string, columns int) ([]float32, error) {
	if columns <= 0 {
		return nil, fmt.Errorf("ffmpeg: waveform of %d columns", columns)
	}
	ctx, cancel := r.deadline(ctx)
	defer cancel()
	info, err := r.Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	if info.Audio == nil {
		return nil, fmt.Errorf("%w: no audio stream", ErrUnsupported)
	}
	return r.waveform(ctx, path, info, columns)
}

func (r *Runner) waveform(ctx context.Context, path string, info *Info, columns int) ([]float32, error) {
	args := append([]string{"-nostdin", "-v", "error"}, append(inputArgs, oneThread...)...)
	out, err := r.run(ctx, r.ffmpeg, append(args,
		"-t", strconv.FormatFloat(r.opts.MaxAudioDuration.Seconds(), 'f', 3, 64),
		"-i", "file:"+path, "-map", "0:"+strconv.Itoa(info.Audio.Index),
		"-ac", "1", "-ar", strconv.Itoa(r.opts.SampleRate), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1")...)
	if err != nil {
		return nil, err
	}
	return peaks(out, columns), nil
}

// peaks splits little-endian s16 samples into columns shares and returns the
// largest absolute value of each, scaled to [0, 1].
func peaks(pcm []byte, columns int) []float32 {
	n := len(pcm) / 2
	p := make([]float32, columns)
	if n == 0 {
		return p
	}
	for i := range n {
		v := int(int16(uint16(pcm[2*i]) | uint16(pcm[2*i+1])<<8))
		if v < 0 {
			v = -v
		}
		c := i * columns / n
		if f := float32(v) / 32768; f > p[c] {
			p[c] = f
		}
	}
	return p
}

// deadline bounds a whole call (its probe and the children after it) by
// Options.Timeout: the call ends in ErrTimeout once it passes.
func (r *Runner) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, r.opts.Timeout, ErrTimeout)
}

// run starts bin with args in its own process group under the CPU and memory
// limits and returns its stdout (at most MaxOutputBytes). When
// Options.Timeout (or a deadline of the call) passes it kills the group and
// returns ErrTimeout; when ctx ends first, ctx's error. A non-zero exit
// (ffmpeg could not read the source) is ErrUnsupported with the start of
// stderr.
func (r *Runner) run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cctx, cancel := context.WithTimeoutCause(ctx, r.opts.Timeout, ErrTimeout)
	defer cancel()
	if cctx.Err() != nil {
		return nil, ended(cctx)
	}
	var cmd *exec.Cmd
	if r.limitWrap != "" {
		cmd = exec.Command(r.limitWrap, append([]string{
			"--cpu=" + strconv.Itoa(r.opts.MaxCPUSeconds),
			"--as=" + strconv.FormatInt(r.opts.MaxMemoryBytes, 10),
			"--", bin}, args...)...)
	} else {
		// ulimit -v counts KiB.
		cmd = exec.Command("/bin/sh", append([]string{"-c",
			`ulimit -t "$1" && ulimit -v "$2" && shift 2 && exec "$@"`, "sh",
			strconv.Itoa(r.opts.MaxCPUSeconds), strconv.FormatInt(r.opts.MaxMemoryBytes/1024, 10),
			bin}, args...)...)
	}
	// Pdeathsig: a server killed outright takes its children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &capped{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ffmpeg: start %s: %w", bin, err)
	}
	// The group is killed only while its leader is not reaped (it may be a
	// zombie: its pid, and so the group's, cannot be reused before Wait).
	pgid := cmd.Process.Pid
	var mu sync.Mutex
	exited, killed := false, false
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killed = true
		}
	}
	stop := context.AfterFunc(cctx, kill)
	out, rerr := io.ReadAll(io.LimitReader(stdout, r.opts.MaxOutputBytes+1))
	tooMuch := int64(len(out)) > r.opts.MaxOutputBytes
	if tooMuch {
		kill()
	}
	var si unix.Siginfo
	for {
		// WNOWAIT: wait for the exit, leave the reaping to cmd.Wait.
		if err := unix.Waitid(unix.P_PID, pgid, &si, unix.WEXITED|unix.WNOWAIT, nil); !errors.Is(err, unix.EINTR) {
			break
		}
	}
	mu.Lock()
	exited = true
	wasKilled := killed && !tooMuch
	mu.Unlock()
	stop()
	werr := cmd.Wait()
	r.children.Add(1)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss := ru.Maxrss * 1024 // KiB on Linux
		for old := r.maxRSS.Load(); rss > old && !r.maxRSS.CompareAndSwap(old, rss); old = r.maxRSS.Load() {
		}
	}
	if wasKilled {
		return nil, ended(cctx)
	}
	if tooMuch {
		return nil, fmt.Errorf("%w: output over %d bytes", ErrTooLarge, r.opts.MaxOutputBytes)
	}
	if rerr != nil {
		return nil, fmt.Errorf("ffmpeg: read output: %w", rerr)
	}
	if werr != nil {
		return nil, fmt.Errorf("%w: %s: %v: %s", ErrUnsupported, filepath.Base(bin), werr, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ended is the error of a call whose context ctx ended: ErrTimeout when
// one of its deadlines passed, else the error (or cause) of the caller's
// context.
func ended(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, ErrTimeout) {
		return ErrTimeout
	}
	return fmt.Errorf("ffmpeg: %w", cause)
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
