package template

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// decodeLZMA2 decodes one LZMA2 stream at r, leaving r just after its end
// marker (the lzma reader reads each chunk through a limit, never ahead).
func decodeLZMA2(r *bytes.Reader, dictCap int) ([]byte, error) {
	if dictCap < lzma.MinDictCap {
		dictCap = lzma.MinDictCap
	}
	lr, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(r)
	if err != nil {
		return nil, fmt.Errorf("LZMA2: %w", err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, lr); err != nil {
		return nil, fmt.Errorf("LZMA2: %w", err)
	}
	return out.Bytes(), nil
}
