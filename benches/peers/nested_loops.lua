-- nested_loops: three nested counted loops with integer arithmetic.
local function main()
  local n = 454
  local acc = 0
  for i = 0, n - 1 do
    for j = 0, n - 1 do
      local ij = i * j
      for k = 0, n - 1 do
        acc = acc + (ij + k) % 7
      end
    end
  end
  print(string.format("%d", acc))
end
main()
