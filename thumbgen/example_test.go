package thumbgen_test

import (
	"fmt"
	"os"

	"github.com/mxcas/mxcas/thumbgen"
)

func ExampleGenerate() {
	src, err := os.ReadFile("testdata/video-001.jpeg")
	if err != nil {
		panic(err)
	}
	info, err := thumbgen.Sniff(src, thumbgen.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Format, info.Width, info.Height)

	res, err := thumbgen.Generate(src, thumbgen.Request{Width: 96, Height: 96, Method: "crop"}, thumbgen.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ContentType, res.Width, res.Height)

	res, err = thumbgen.Generate(src, thumbgen.Request{Width: 800, Height: 600, Method: "scale"}, thumbgen.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ContentType, res.Width, res.Height, "(the original: never upscaled)")
	// Output:
	// jpeg 150 103
	// image/jpeg 96 96
	// image/jpeg 150 103 (the original: never upscaled)
}
