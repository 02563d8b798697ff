-- sum_loop: tight counted loop with integer accumulation.
local function main()
  local n = 100000000
  local total = 0
  local odd = 0
  for i = 0, n - 1 do
    total = total + i
    if i % 3 == 1 then
      odd = odd + 1
    end
  end
  print(string.format("%d", total))
  print(string.format("%d", odd))
end
main()
