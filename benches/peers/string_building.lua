-- string_building: string concatenation, interpolation, join and byte access.
local function main()
  local rounds = 15000
  local total_len = 0
  local h = 0
  for r = 0, rounds - 1 do
    local parts = {}
    for i = 0, 99 do
      parts[#parts + 1] = "k" .. i .. "=" .. (i * 7 + r) % 13
    end
    local line = table.concat(parts, ",")
    local s = ""
    for i = 0, 29 do
      s = s .. "ab" .. (i % 10)
    end
    line = line .. ";" .. s
    total_len = total_len + #line
    for j = 1, #line do
      h = (h * 31 + string.byte(line, j)) % 1000000007
    end
  end
  print(string.format("%d", total_len))
  print(string.format("%d", h))
end
main()
