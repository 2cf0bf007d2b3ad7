# cmake -DSPV=in.spv -DOUT=out.cpp -DIDENT=name -P embed_spirv.cmake
# Writes the SPIR-V words of one shader as a C++ array.
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" nchars)
math(EXPR nwords "${nchars} / 8")
# SPIR-V is little-endian on every target we build for: regroup each 4 bytes into one 0x word.
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "(0x........u,0x........u,0x........u,0x........u,0x........u,0x........u,0x........u,0x........u,)" "\\1\n" words "${words}")
file(WRITE ${OUT} "#include <cstddef>\n#include <cstdint>\nnamespace vkm::spirv {\nextern const uint32_t ${IDENT}_words[] = {\n${words}\n};\nextern const size_t ${IDENT}_count = ${nwords};\n}\n")
