package chunker_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/mxcas/mxcas/chunker"
)

// exampleData is 8000 bytes of deterministic content.
func exampleData() []byte {
	data := make([]byte, 8000)
	for i := range data {
		data[i] = byte(i * i >> 3)
	}
	return data
}

func ExampleSplit() {
	// Small parameters so that a few KiB make several chunks.
	p := chunker.Params{Min: 256, Avg: 1024, Max: 4096}
	off := 0
	err := chunker.Split(exampleData(), p, func(chunk []byte) error {
		fmt.Printf("chunk at %4d, %4d bytes\n", off, len(chunk))
		off += len(chunk)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// chunk at    0, 1261 bytes
	// chunk at 1261, 1314 bytes
	// chunk at 2575, 1180 bytes
	// chunk at 3755, 1067 bytes
	// chunk at 4822, 1559 bytes
	// chunk at 6381, 1314 bytes
	// chunk at 7695,  305 bytes
}

func ExampleNew() {
	p := chunker.Params{Min: 256, Avg: 1024, Max: 4096}
	c, err := chunker.New(bytes.NewReader(exampleData()), p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Release()
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err) // the reader's error; the stream is incomplete
			return
		}
		// chunk is valid until the next call to Next: hash or copy it here.
		fmt.Println(len(chunk))
	}
	// Output:
	// 1261
	// 1314
	// 1180
	// 1067
	// 1559
	// 1314
	// 305
}
